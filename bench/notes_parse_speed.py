"""Parse time of a long reading list: the reader now vs the reader at a baseline commit.

    .venv/bin/python bench/notes_parse_speed.py --bullets 5000 --baseline 83103f3

A synthetic README (an introduction, month headings, N bullets shaped
`- [Title](arxiv) [[Notes](paper_notes/x.md)] [tag] <kbd>CVPR 2019</kbd>`) is parsed by both,
alternately, `--repeat` times each in this process; medians are reported with their ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme(n: int) -> str:
    parts = ["# Paper notes\n\nNotes on papers I read, a few words of introduction here.\n"]
    for k in range(n):
        if k % 100 == 0:
            parts.append(f"\n## 20{k // 100 % 30:02d}-{k % 12 + 1:02d}\n\n")
        parts.append(
            f"- [Paper number {k} about things](https://arxiv.org/abs/1611.{k % 100000:05d}) "
            f"[[Notes](paper_notes/p{k}.md)] [tag] <kbd>CVPR 2019</kbd>\n"
        )
    return "".join(parts)


def baseline_parser(ref: str, tmp: Path):  # type: ignore[no-untyped-def]
    source = subprocess.run(
        ["git", "show", f"{ref}:search/notes.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    path = tmp / "notes_baseline.py"
    path.write_text(source.replace("from .records import", "from search.readers.records import"))
    spec = importlib.util.spec_from_file_location("notes_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["notes_baseline"] = module
    spec.loader.exec_module(module)
    return module.parse_markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bullets", type=int, default=5000)
    ap.add_argument("--baseline", default="83103f3")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from search.readers.markdown import parse_markdown

    text = readme(args.bullets)
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_parser(args.baseline, Path(tmp))
        times: dict[str, list[float]] = {"baseline": [], "now": []}
        counts = {}
        for _ in range(args.repeat):
            for name, parse in (("baseline", old), ("now", parse_markdown)):
                start = time.perf_counter()
                result = parse(text, "README.md")
                times[name].append(time.perf_counter() - start)
                counts[name] = len(result.records)
    base, now = statistics.median(times["baseline"]), statistics.median(times["now"])
    print(f"{args.bullets} bullets, {len(text) / 1e6:.2f} MB")
    print(f"baseline {args.baseline}: {base:.2f} s ({counts['baseline']} records)")
    print(f"now: {now:.2f} s ({counts['now']} records); ratio {now / base:.2f}x")


if __name__ == "__main__":
    main()
