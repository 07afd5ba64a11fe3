"""Write a large synthetic reading list: the shape of a popular notes repository at scale.

A README of N papers (bullets `- [Title](https://arxiv.org/abs/ID) [[notes](notes/slug.md)]
<kbd>VENUE YEAR</kbd>` under monthly `##` headings), M of them with a note file of their own
(`# [Title](url)`, a tl;dr, Key ideas bullets citing other papers, a paragraph of technical
detail). Titles and text are drawn from a fixed vocabulary with a seeded generator, so the
same arguments always give the same files. Used to time a first build at the scale issue 18
names (1,500 papers, 560 note files):

    .venv/bin/python bench/reading_list.py /tmp/rl --papers 1500 --notes 560
    .venv/bin/python bench/first_build.py --notes /tmp/rl
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

WORDS = (
    "learning deep neural networks attention transformer graph convolutional adversarial "
    "generative diffusion contrastive self-supervised representation reinforcement policy "
    "gradient optimization stochastic variational inference bayesian uncertainty robust "
    "efficient scalable sparse dense retrieval language vision multimodal detection "
    "segmentation tracking depth estimation monocular stereo point cloud reconstruction "
    "rendering neural fields implicit memory recurrent temporal video audio speech "
    "translation summarization reasoning planning control manipulation navigation agents "
    "few-shot zero-shot meta transfer domain adaptation distillation pruning quantization"
).split()
VENUES = ("CVPR", "ICCV", "ECCV", "NeurIPS", "ICML", "ICLR", "ACL", "EMNLP", "CoRL", "AAAI")


def title(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 11))]
    head = " ".join(w.capitalize() for w in words[:3])
    return f"{head}: {' '.join(words[3:]).capitalize()}" if len(words) > 5 else head


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write(out: Path, papers: int, notes: int, seed: int = 18) -> None:
    rng = random.Random(seed)
    (out / "notes").mkdir(parents=True, exist_ok=True)
    with_note = set(rng.sample(range(papers), notes))
    lines = ["# Paper notes", "", "Papers I read, newest first; some have notes of their own.", ""]
    seen: set[str] = set()
    for i in range(papers):
        if i % 40 == 0:
            lines += ["", f"## {2024 - i // 480}-{12 - (i // 40) % 12:02d}", ""]
        t = title(rng)
        while t in seen:
            t = title(rng)
        seen.add(t)
        arxiv = f"{19 + i % 6}{(i % 12) + 1:02d}.{10000 + i:05d}"
        url = f"https://arxiv.org/abs/{arxiv}"
        venue = f"<kbd>{rng.choice(VENUES)} {2019 + i % 6}</kbd>"
        if i in with_note:
            slug = f"paper_{i:04d}"
            lines.append(f"- [{t}]({url}) [[notes](notes/{slug}.md)] {venue}")
            cited = [f"[{title(rng)}](https://arxiv.org/abs/2001.{i:05d})" for _ in range(3)]
            note = [
                f"# [{t}]({url})",
                "",
                f"_{rng.choice(('Jan', 'Mar', 'Jun', 'Sep'))} {2019 + i % 6}_",
                "",
                f"tl;dr: {sentence(rng, 14)}",
                "",
                "#### Key ideas",
                *(f"- {sentence(rng, 10)} Builds on {c}." for c in cited),
                "",
                "#### Technical details",
                " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(3, 12))),
                "",
            ]
            (out / "notes" / f"{slug}.md").write_text("\n".join(note), encoding="utf-8")
        else:
            lines.append(f"- [{t}]({url}) {venue}")
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path, help="notes folder to write (created)")
    ap.add_argument("--papers", type=int, default=1500)
    ap.add_argument("--notes", type=int, default=560)
    args = ap.parse_args()
    write(args.out, args.papers, args.notes)
    print(f"wrote {args.papers} papers, {args.notes} note files under {args.out}")


if __name__ == "__main__":
    main()
