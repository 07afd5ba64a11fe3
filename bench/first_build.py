"""Time the first `papers rebuild` of a real notes folder, this checkout against another.

Each run copies the notes into a fresh temporary library and runs `papers --library LIB
rebuild --json` in a fresh process (the real packaged model, nothing cached), taking turns
between the two source trees so that load from other jobs hits them alike. The baseline is
another checkout's `search/` package, e.g. the commit before a change:

    mkdir -p /tmp/base && git archive COMMIT search | tar -x -C /tmp/base
    .venv/bin/python bench/first_build.py --baseline /tmp/base --runs 1

Without --notes it picks the folder of ../shared/data/notes-real with the most chunks.

Every build gets its own empty user cache ($XDG_CACHE_HOME), so nothing is reused: the first
build of a first library. With --second-library, every build shares one cache primed by an
unmeasured build of this checkout first: the first build of a second library on the same
machine, which reuses the ONNX export cached by the first (a baseline that keeps no cache
pays the export every time):

    mkdir -p /tmp/base && git archive a2892f2 search | tar -x -C /tmp/base
    .venv/bin/python bench/first_build.py --notes notes --second-library \\
        --baseline /tmp/base --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTES_REAL = REPO.parent / "shared" / "data" / "notes-real"
# `papers` in any revision: search/faces/cli.py since the subpackages, search/cli.py before.
PAPERS_MAIN = (
    "try:\n    from search.faces.cli import main\n"
    "except ImportError:\n    from search.cli import main\n"
    "main()"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--notes", type=Path, default=None, help="notes folder to index")
    ap.add_argument("--baseline", type=Path, default=None, help="folder holding another search/")
    ap.add_argument("--runs", type=int, default=1, help="runs per source tree")
    ap.add_argument(
        "--second-library",
        action="store_true",
        help="share one user cache, primed first (the first build of a second library)",
    )
    args = ap.parse_args()
    shared_cache = None
    if args.second_library:
        shared_cache = Path(tempfile.mkdtemp(prefix="bench-first-build-cache-"))
        first_build(args.notes or largest_by_chunks(NOTES_REAL), REPO, shared_cache)

    notes = args.notes or largest_by_chunks(NOTES_REAL)
    trees = {"this checkout": REPO}
    if args.baseline is not None:
        if not any((args.baseline / "search" / p).is_file() for p in ("faces/cli.py", "cli.py")):
            sys.exit(f"error: no search/faces/cli.py (or search/cli.py) under {args.baseline}")
        trees = {"baseline": args.baseline.resolve(), **trees}
    times: dict[str, list[float]] = {label: [] for label in trees}
    cpu: dict[str, list[float]] = {label: [] for label in trees}
    chunks: dict[str, int] = {}
    for _ in range(args.runs):
        for label, tree in trees.items():
            seconds, cpu_seconds, report = first_build(notes, tree, shared_cache)
            times[label].append(seconds)
            cpu[label].append(cpu_seconds)
            chunks[label] = int(report["chunks"])
            print(
                f"{label}: {seconds:.1f} s, {cpu_seconds:.1f} CPU s, {report['chunks']} chunks",
                file=sys.stderr,
            )

    print(
        f"\nFirst build of {notes} ({os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; median of {args.runs} fresh processes each)\n"
    )
    # CPU seconds (user + system, every thread) say what the build costs when other jobs
    # take the cores; wall seconds are what the user waits.
    print("| code | chunks | first build, wall s | CPU s (user + sys) | chunks/s overall |")
    print("|---|---:|---:|---:|---:|")
    for label, runs in times.items():
        median = statistics.median(runs)
        used = statistics.median(cpu[label])
        print(
            f"| {label} | {chunks[label]} | {median:.1f} | {used:.1f} "
            f"| {chunks[label] / median:.1f} |"
        )
    if shared_cache is not None:
        shutil.rmtree(shared_cache, ignore_errors=True)
        print("\n(second library: one user cache shared by every build, primed first)")
    if "baseline" in times:
        ratio = statistics.median(times["baseline"]) / statistics.median(times["this checkout"])
        print(f"\nbaseline / this checkout: {ratio:.2f}x")
    return 0


def first_build(notes: Path, tree: Path, cache: Path | None = None) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-first-build-") as tmp:
        lib = Path(tmp) / "library"
        shutil.copytree(notes, lib / "notes")
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        # Never the user's own cache: a fresh one per build, or the one shared on purpose.
        env["XDG_CACHE_HOME"] = str(cache or Path(tmp) / "cache")
        cmd = [sys.executable, "-c", PAPERS_MAIN]
        cmd += ["--library", str(lib), "rebuild", "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        # cwd: `python -c` puts the current folder first on sys.path, before PYTHONPATH, so
        # run from the repository it would import this checkout's search/ for the baseline too.
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=tmp)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"error: rebuild failed under {tree}:\n{done.stderr}")
    return seconds, cpu, json.loads(done.stdout)


def largest_by_chunks(folder: Path) -> Path:
    """The notes folder that gives the most chunks, as this checkout reads and chunks it."""
    sys.path.insert(0, str(REPO))
    from search.build import collect_papers
    from search.encoders.encoder import resolve_model
    from search.encoders.index_encoder import model_info
    from search.storage.chunking import chunk, paper_text

    info = model_info(resolve_model(None), None, lambda s: None)
    counts = {}
    for notes in sorted(p for p in folder.iterdir() if p.is_dir()):
        papers = collect_papers(notes)
        counts[notes] = sum(
            len(chunk(paper_text(p), info.spans, info.max_tokens, info.document_prompt))
            for p in papers
        )
    return max(counts, key=lambda p: counts[p])


if __name__ == "__main__":
    raise SystemExit(main())
