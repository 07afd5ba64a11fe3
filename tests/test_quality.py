"""Answer quality over the seed notes, with the real packaged model (no fake here)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.faces.cli import cli
from search.library import merge
from search.readers.markdown import read_markdown_file
from search.readers.records import normalise_title

from .conftest import SEED

pytestmark = pytest.mark.model

# (question, start of the title it must find); no question reuses a word of its title.
QUESTIONS = [
    (
        "how can I train a denoiser when I only have one noisy image?",
        "Self2Self With Dropout",
    ),
    (
        "recommending clothes that go well with a garment the shopper already picked",
        "Fashion Outfit Complementary",
    ),
    (
        "which method combines NCA with lifted structure and trains faster?",
        "Proxy Anchor Loss",
    ),
    (
        "adding an angle-based penalty to a triplet objective",
        "Moving in the Right Direction",
    ),
    (
        "novelty and outlier detection in images",
        "Uninformed Students",
    ),
    (
        "re-weighting hard and easy examples dynamically inside the objective",
        "Circle Loss",
    ),
    (
        "representing pictures in negatively curved Poincaré ball space",
        "Hyperbolic Image Embeddings",
    ),
    (
        "should a network be over-confident? soft targets versus a teacher",
        "Revisiting Knowledge Distillation",
    ),
    (
        "grouping clips of huge movie collections to train features",
        "Large Scale Video",
    ),
    (
        "features that stay the same under jigsaw shuffles and rotations",
        "Self-Supervised Learning of Pretext-Invariant",
    ),
    (
        "making pretrained features generalise better by grouping them and training again",
        "ClusterFit",
    ),
    (
        "benchmark photos of famous buildings and places to recognise",
        "Google Landmarks Dataset",
    ),
    (
        "self-driving car sensor recordings with lidar and cameras",
        "Scalability in Perception",
    ),
]


@pytest.fixture(scope="module")
def real_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib = tmp_path_factory.mktemp("real") / "library"
    (lib / "notes").mkdir(parents=True)
    shutil.copy(SEED, lib / "notes" / "cvpr2020.md")
    with pytest.MonkeyPatch.context() as m:  # an empty user cache: this build exports
        m.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        result = CliRunner().invoke(cli, ["--library", str(lib), "rebuild"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    # Embedding and the ONNX export share one model load (it costs seconds).
    assert result.stderr.count("with sentence-transformers") == 1, result.stderr
    return lib


def _ask(lib: Path, question: str, *args: str) -> list[dict]:
    result = CliRunner().invoke(
        cli, ["--library", str(lib), "ask", question, "--json", "-k", "3", *args]
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_questions_do_not_reuse_title_words() -> None:
    stop = {"a", "an", "the", "of", "for", "in", "with", "to", "and", "by", "on", "via", "from"}
    for question, title in QUESTIONS:
        q_words = set(normalise_title(question).split()) - stop
        t_words = set(normalise_title(title).split()) - stop
        assert not q_words & t_words, (question, q_words & t_words)


def test_questions_cover_most_papers() -> None:
    # Each question names exactly one paper of the seed notes, no two the same one, and
    # together they reach most of the papers (the rest have no note to ask about).
    papers = merge(read_markdown_file(SEED, SEED.name).records)
    targets = []
    for question, start in QUESTIONS:
        matches = [p.id for p in papers if p.title.startswith(start)]
        assert len(matches) == 1, (question, start, matches)
        targets.append(matches[0])
    assert len(set(targets)) == len(targets)
    assert len(targets) >= 0.8 * len(papers), (len(targets), len(papers))


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_each_question_finds_its_paper(real_library: Path, mode: str) -> None:
    firsts, misses = 0, []
    for question, title in QUESTIONS:
        hits = _ask(real_library, question, "--mode", mode)
        titles = [h["title"] for h in hits]
        if titles[0].startswith(title):
            firsts += 1
        if not any(t.startswith(title) for t in titles):
            misses.append((question, titles))
    assert not misses, misses
    assert firsts >= len(QUESTIONS) - 2, f"only {firsts}/{len(QUESTIONS)} first"


def test_similar_to_proxy_anchor_is_embedding_papers(real_library: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--library", str(real_library), "similar", "Proxy Anchor Loss", "--json", "-k", "3"]
    )
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [h["section"] for h in hits] == [["Embedding"]] * 3
    assert all(not re.match("Proxy Anchor", h["title"]) for h in hits)


def test_broken_fast_encoder_is_an_error_then_rebuild_restores_it(
    real_library: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "copy"
    shutil.copytree(real_library, lib)
    [exported] = (lib / "index" / "encoders").iterdir()
    (exported / "model.onnx.data").write_bytes(b"broken")
    runner = CliRunner()
    question = QUESTIONS[0][0]
    result = runner.invoke(cli, ["--library", str(lib), "ask", question, "--json", "-k", "1"])
    # Damaged like an index file: one line saying to rebuild (issue 10, D4), no quiet fallback.
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "papers rebuild" in lines[0], result.stderr
    result = runner.invoke(cli, ["--library", str(lib), "rebuild"])
    assert result.exit_code == 0, result.stderr
    assert "exporting the encoder" in result.stderr
    result = runner.invoke(cli, ["--library", str(lib), "ask", question, "--json", "-k", "1"])
    assert "warning" not in result.stderr
    assert json.loads(result.stdout)[0]["title"].startswith(QUESTIONS[0][1])
