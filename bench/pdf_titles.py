"""Titles guessed from PDFs without using their metadata, this checkout against another.

For each PDF given (or every *.pdf under the folders given), prints the title each source tree
guesses from the first page alone (as for a PDF whose metadata has no title), beside the
expected title when a TSV of `file<TAB>title` is given; the count right per tree at the end.

    mkdir -p /tmp/base && git archive a2892f2 search | tar -x -C /tmp/base
    .venv/bin/python bench/pdf_titles.py --baseline /tmp/base --expected titles.tsv PDF...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUESS = """
import json, sys
from pathlib import Path
from search.readers.pdfs import extract_pages, guess_title
out = {}
for f in sys.argv[1:]:
    t = extract_pages(Path(f))
    first = t.pages[0][1] if t.pages else ""
    args = ("", first, "") + ((t.heading,) if hasattr(t, "heading") else ())
    out[f] = guess_title(*args)
print(json.dumps(out))
"""


def guesses(tree: Path, pdfs: list[Path]) -> dict[str, str]:
    """Each PDF's guessed title under `tree`'s search/ (a fresh process, run from /)."""
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", GUESS, *map(str, pdfs)],
        capture_output=True, text=True, env=env, cwd="/", check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("paths", nargs="+", type=Path, help="PDF files or folders")
    ap.add_argument("--baseline", type=Path, help="folder holding another search/")
    ap.add_argument("--expected", type=Path, help="TSV: file<TAB>expected title")
    args = ap.parse_args()
    pdfs = [q for p in args.paths for q in (sorted(p.rglob("*.pdf")) if p.is_dir() else [p])]
    expected = {}
    if args.expected:
        for line in args.expected.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                f, title = line.split("\t", 1)
                expected[str(Path(f))] = title
    trees = {"this checkout": REPO}
    if args.baseline:
        trees = {"baseline": args.baseline, **trees}
    found = {label: guesses(tree, pdfs) for label, tree in trees.items()}
    right = dict.fromkeys(trees, 0)
    for pdf in pdfs:
        print(pdf)
        want = expected.get(str(pdf))
        if want:
            print(f"  expected:      {want}")
        for label in trees:
            got = found[label][str(pdf)]
            ok = want is not None and got.casefold() == want.casefold()
            right[label] += ok
            print(f"  {label + ':':<14} {got}" + ("  (right)" if ok else ""))
    if expected:
        for label, n in right.items():
            print(f"{label}: {n} of {len(pdfs)} right")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
