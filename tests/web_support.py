"""A library for the MCP, web and map tests: the seed notes plus three topics of 25 papers,
built once per test module with the fake encoder (enough papers for a t-SNE layout, distinct
words per topic so that clusters and labels can be checked)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from search.api import Library
from search.encoders.encoder import register_encoder, unregister_encoder

from .conftest import SEED, FakeEncoder

TOPICS = {
    "Vision": "image pixel convolution segmentation detection camera depth".split(),
    "Language": "token sentence translation language grammar parsing word".split(),
    "Robots": "robot grasp arm motor torque locomotion manipulation".split(),
}
PER_TOPIC = 25


def write_topic_notes(notes: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    lines: list[str] = []
    for topic, vocab in TOPICS.items():
        lines += [f"# {topic}", ""]
        for i in range(PER_TOPIC):
            title = f"{vocab[i % len(vocab)].title()} {rng.choice(vocab)} study {topic} {i}"
            lines += [f"- {title}", f"  > {' '.join(rng.choices(vocab, k=8))}"]
        lines.append("")
    (notes / "topics.md").write_text("\n".join(lines), encoding="utf-8")


def build_topic_library(root: Path) -> Path:
    """notes/ (seed + topics) and a built index at `root`, with the fake encoder."""
    (root / "notes").mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, root / "notes" / "cvpr2020.md")
    write_topic_notes(root / "notes")
    register_encoder("fake", FakeEncoder)
    try:
        Library(root, model="fake").rebuild()
    finally:
        unregister_encoder("fake")
    return root


PAPERS = 16 + 3 * PER_TOPIC
