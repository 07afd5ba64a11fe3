"""How well the reader reads real paper-notes repositories it was not written for.

For each repository in ../shared/data/notes-real (and notes-dennybritz and the seed), copy its
notes into a fresh library, `papers rebuild`, `papers list --json`, and compare with the
repository's expected.json (see notes-real/README.md for the matching rule):

    papers found vs expected, sampled titles found, all-title recall, expected note files
    joined to exactly one paper, first-rebuild seconds.

    .venv/bin/python bench/notes_real.py                 # fake hashing encoder (fast)
    .venv/bin/python bench/notes_real.py --real          # the packaged model (times it)
    .venv/bin/python bench/notes_real.py --parse-only    # no index: collect_papers only
    .venv/bin/python bench/notes_real.py --next          # and ../shared/data/notes-real-next

`evaluate()` is also used by tests/test_notes_real.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
REAL = DATA / "notes-real"
# Repositories in the same format that the reader was not developed on at first (an Obsidian
# vault where most pages are not papers; notes in Chinese): --next scores them too.
REAL_NEXT = DATA / "notes-real-next"


def norm(text: str) -> str:
    """The matching key of notes-real/README.md: lowercase letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class Score:
    name: str
    found: int
    expected: int
    samples_found: int
    samples: int
    recall: float | None
    joined: int
    note_files: int
    seconds: float | None = None

    @property
    def count_ok(self) -> bool:
        return abs(self.found - self.expected) <= 0.1 * self.expected

    def row(self) -> str:
        secs = f"{self.seconds:.1f}" if self.seconds is not None else "-"
        samples = f"{self.samples_found}/{self.samples}" if self.samples else "-"
        recall = f"{self.recall:.2f}" if self.recall is not None else "-"
        return (
            f"| {self.name} | {self.found} / {self.expected} ({self.found / self.expected:.2f}x) "
            f"| {samples} | {recall} | {self.joined}/{self.note_files} | {secs} |"
        )


def evaluate(name: str, expected: dict[str, Any], papers: list[dict[str, Any]]) -> Score:
    """Score `papers` (as `papers list --json` prints them: title, aliases?, sources)."""
    keys = [[norm(p["title"]), *(norm(a) for a in p.get("aliases", []))] for p in papers]

    def found(entry: dict[str, Any]) -> bool:
        wanted = [norm(entry["title"]), *(norm(a) for a in entry.get("aliases", []))]
        return any(w and w in k for w in wanted for ks in keys for k in ks)

    samples = expected["samples"]
    all_papers = expected["papers"]
    holders: dict[str, int] = {}
    for p in papers:
        for f in {s["file"].removeprefix("notes/") for s in p["sources"]}:
            holders[f] = holders.get(f, 0) + 1
    note_files = expected["note_files"]
    return Score(
        name=name,
        found=len(papers),
        expected=expected["expected_papers"],
        samples_found=sum(map(found, samples)),
        samples=len(samples),
        recall=sum(map(found, all_papers)) / len(all_papers) if all_papers else None,
        joined=sum(holders.get(f) == 1 for f in note_files),
        note_files=len(note_files),
    )


def parse_only(notes: Path) -> list[dict[str, Any]]:
    """What `papers list --json` would say, without an index (collect_papers)."""
    sys.path.insert(0, str(ROOT))
    from search.build import collect_papers

    return [
        {
            "title": p.title,
            "aliases": p.aliases,
            "sources": [{"file": f"notes/{r.file}", "line": r.line} for r in p.records],
        }
        for p in collect_papers(notes)
    ]


def built(notes: Path, real: bool) -> tuple[list[dict[str, Any]], float]:
    """Copy `notes` into a fresh library, rebuild, list: (papers, rebuild seconds)."""
    # This checkout's package (a worktree's too), whichever checkout the venv was made from.
    papers_cli = [sys.executable, "-c", "from search.faces.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "library"
        shutil.copytree(notes, lib / "notes")
        env = {**os.environ, "PAPERS_LIBRARY": str(lib), "HF_HUB_OFFLINE": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "bench")])
        if not real:
            cmd = [sys.executable, "-c", _HASHING_REBUILD]
        else:
            cmd = [*papers_cli, "rebuild"]
        start = time.perf_counter()
        _run(cmd, env)
        seconds = time.perf_counter() - start
        out = _run([*papers_cli, "list", "--json"], env)
    return json.loads(out), seconds


def _run(cmd: list[str], env: dict[str, str]) -> bytes:
    done = subprocess.run(cmd, env=env, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[-3:])} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout


# A rebuild with the project's fake encoder (tests/fake_encoder.py): what is measured is the
# reader.
_HASHING_REBUILD = """
from search.encoders.encoder import register_encoder
from search.faces.cli import main
from tests.fake_encoder import hashing_encoder
register_encoder("hashing", hashing_encoder(64, 256))
import sys
sys.argv = ["papers", "rebuild", "--model", "hashing"]
main()
"""


def repositories(folder: Path = REAL) -> list[tuple[str, Path, dict[str, Any]]]:
    out = []
    for exp in sorted(folder.glob("*.expected.json")):
        name = exp.name.removesuffix(".expected.json")
        out.append((name, folder / name, json.loads(exp.read_text(encoding="utf-8"))))
    return out


def local_expectations() -> list[tuple[str, Path, dict[str, Any]]]:
    """The reading list and the seed: expected counts from tests/test_notes.py."""
    out = []
    denny = DATA / "notes-dennybritz"
    if denny.is_dir():
        notes = sorted(p.relative_to(denny).as_posix() for p in (denny / "notes").glob("*.md"))
        out.append(
            (
                "notes-dennybritz",
                denny,
                {"expected_papers": 619, "samples": [], "papers": [], "note_files": notes},
            )
        )
    seed = ROOT / "notes"
    out.append(
        (
            "seed (notes/)",
            seed,
            {"expected_papers": 16, "samples": [], "papers": [], "note_files": []},
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--real", action="store_true", help="rebuild with the packaged model")
    how.add_argument("--parse-only", action="store_true", help="collect_papers, no index")
    ap.add_argument("--only", default=None, help="only repositories whose name contains this")
    ap.add_argument("--next", action="store_true", help="also ../shared/data/notes-real-next")
    args = ap.parse_args()
    print(
        "| repository | papers found / expected | sampled titles | all-title recall "
        "| note files joined to one paper | first rebuild (s) |"
    )
    print("|---|---|---|---|---|---|")
    extra = repositories(REAL_NEXT) if args.next else []
    for name, folder, expected in repositories() + extra + local_expectations():
        if args.only and args.only not in name:
            continue
        if args.parse_only:
            papers, secs = parse_only(folder), None
        else:
            papers, secs = built(folder, args.real)
        score = evaluate(name.split("+")[0], expected, papers)
        score.seconds = secs
        print(score.row(), flush=True)


if __name__ == "__main__":
    main()
