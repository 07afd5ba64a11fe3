"""Recommendation quality per method, on a real reading list, and speed at 100k catalog papers.

    .venv/bin/python bench/recommend_quality.py [--work /tmp/recommend-bench] [--seeds 3]
    .venv/bin/python bench/recommend_quality.py --only-speed

Quality: the reading list in ../shared/data/notes-dennybritz (README.md: papers under month
headings, plus 99 long-form notes) is indexed as notes with the packaged model (a real
`papers rebuild`). Then, for each section with at least MIN_SECTION papers, half of its papers
(random, per seed) are hidden in a catalog among distractors (the titles of the 1,660 CVPR 2021
papers and the 5,183 SciFact abstracts); the other half are the positives (what
`papers recommend --like SECTION` uses), and each method ranks the catalog. Reported:
recall@20 and @100 of the hidden papers, averaged over sections and seeds. A second protocol
hides 20% of the whole list and uses every other paper as a positive (plain
`papers recommend`).

The reading list has titles only (no abstracts), so every catalog entry, hidden or distractor,
is embedded from its title alone: otherwise the hidden papers would stand out by their
shorter text, not by their topic.

Speed: a catalog of 100,000 synthetic 384-d vectors (float16 on disk, as merged/ holds them,
read as `papers recommend` reads them: ann.Rows) with keyword features of the same density as
real abstracts, 600 positives; the time of one `scores_for` + top-k per method (the part that
grows with the catalog). Memory: the peak RSS of a fresh process scoring --memory-n papers
(1M) with svm, read in blocks as now and, as the baseline, through a memory map.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.catalog import ann  # noqa: E402
from search.catalog.recommend import METHODS, Examples, Positive, keyword_matrix, scores_for  # noqa: E402
from search.library import library_paths  # noqa: E402
from search.storage import vectors  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MIN_SECTION = 10


def build_notes(work: Path) -> Path:
    lib = work / "library"
    if (lib / "index" / "CURRENT").is_file():
        return lib
    shutil.rmtree(lib, ignore_errors=True)
    shutil.copytree(DATA / "notes-dennybritz", lib / "notes")
    from search.build import rebuild

    t = time.perf_counter()
    rebuild(library_paths(lib), log=lambda s: print(s, file=sys.stderr))
    print(f"notes indexed in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return lib


def distractor_titles() -> list[str]:
    titles = []
    for line in (DATA / "cvpr2021" / "papers.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            titles.append(json.loads(line)["title"])
    for line in (DATA / "scifact-train" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            titles.append(json.loads(line)["title"])
    return [t for t in titles if t.strip()]


def recall(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, kind="stable")[:k]
    return float(np.isin(targets, top).mean())


def quality(lib: Path, seeds: int) -> dict[str, object]:
    from search.catalog.catalog import catalog_encoder
    from search.storage.store import Index

    paths = library_paths(lib)
    index = Index.open(paths.index)
    rows = index.all_papers()
    by_pid: dict[int, list[int]] = {}
    for vid, pid in index.query("SELECT vid, pid FROM chunks ORDER BY pid, ord"):
        by_pid.setdefault(pid, []).append(vid)
    dim = int(index.vectors.d)
    note_vecs = np.zeros((len(rows), dim), dtype=np.float32)
    for i, r in enumerate(rows):
        v = vectors.reconstruct(index.vectors, by_pid[r.pid]).mean(axis=0)
        note_vecs[i] = v / np.linalg.norm(v)
    enc = catalog_encoder(paths, None)
    titles = [r.title for r in rows]
    distractors = distractor_titles()
    t = time.perf_counter()
    title_vecs = enc.encode(titles)
    distractor_vecs = enc.encode(distractors)
    embed_s = time.perf_counter() - t
    all_texts = titles + distractors
    kw_all, _idf = keyword_matrix(all_texts)
    texts_of_rows = [" ".join([r.title, *r.notes, r.abstract]) for r in rows]

    def run(hidden: list[int], positives: list[int]) -> dict[str, tuple[float, float]]:
        # Catalog = hidden papers' titles + distractors.
        cat_vecs = np.concatenate([title_vecs[hidden], distractor_vecs]).astype(np.float16)
        kw_rows = np.concatenate([np.asarray(hidden), len(rows) + np.arange(len(distractors))])
        kw = kw_all[kw_rows]
        # The idf of the whole corpus is close enough to the catalog's own for this test.
        examples = Examples(
            positives=[
                Positive(rows[i].id, rows[i].title, rows[i].where, texts_of_rows[i])
                for i in positives
            ],
            pos_vecs=note_vecs[positives],
        )
        candidates = np.arange(len(cat_vecs))
        targets = np.arange(len(hidden))
        out = {}
        for method in METHODS:
            s = scores_for(method, cat_vecs, candidates, examples, keywords=(kw, _idf))
            out[method] = (recall(s, targets, 20), recall(s, targets, 100))
        return out

    sections: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.section:
            sections.setdefault(r.section[0], []).append(i)
    big = {s: idx for s, idx in sections.items() if len(idx) >= MIN_SECTION}
    per_section: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    whole: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for idx in big.values():
            order = rng.permutation(idx)
            half = len(order) // 2
            res = run(list(order[:half]), list(order[half:]))
            for m, v in res.items():
                per_section[m].append(v)
        order = rng.permutation(len(rows))
        cut = len(rows) // 5
        res = run(list(order[:cut]), list(order[cut:]))
        for m, v in res.items():
            whole[m].append(v)

    def mean(vals: list[tuple[float, float]]) -> dict[str, float]:
        arr = np.asarray(vals)
        return {
            "recall@20": round(float(arr[:, 0].mean()), 3),
            "recall@100": round(float(arr[:, 1].mean()), 3),
        }

    return {
        "papers": len(rows),
        "sections_used": len(big),
        "section_sizes": sorted(len(v) for v in big.values()),
        "distractors": len(distractors),
        "seeds": seeds,
        "embed_titles_s": round(embed_s, 1),
        "like_section": {m: mean(v) for m, v in per_section.items()},
        "all_notes_hide_20pct": {m: mean(v) for m, v in whole.items()},
    }


def synthetic_catalog(work: Path, n: int, dim: int = 384) -> Path:
    """n unit vectors (a Gaussian mixture of n/1000 topics) as float16 in a .npy, written in
    chunks as `catalog embed` writes merged/vectors.npy."""
    path = work / f"speed-vectors-{n}.npy"
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((max(1, n // 1000), dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = centres[rng.integers(0, len(centres), m)]
        x += rng.standard_normal((m, dim)).astype(np.float32) * (2.0 / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + m] = x
    out.flush()
    del out
    return path


def examples_from(path: Path, positives: int) -> Examples:
    rng = np.random.default_rng(1)
    rows = ann.Rows(path)  # not a memory map: see ann.Rows
    pos = rows.take(np.sort(rng.integers(0, len(rows), positives)))
    rows.close()
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    return Examples(
        positives=[
            Positive(str(i), f"paper {i}", "", f"words of paper {i}") for i in range(positives)
        ],
        pos_vecs=pos,
    )


def speed(work: Path, n: int = 100_000, positives: int = 600) -> dict[str, float]:
    import scipy.sparse as sp

    path = synthetic_catalog(work, n)
    # Read as `papers recommend` reads merged/vectors.npy.
    vecs = ann.Rows(path)
    examples = examples_from(path, positives)
    rng = np.random.default_rng(0)
    # ~120 distinct hashed words and bigrams per abstract, as measured on SciFact.
    per_row = 120
    indices = rng.integers(0, 1 << 18, n * per_row).astype(np.int32)
    data = rng.random(n * per_row).astype(np.float32)
    indptr = np.arange(0, n * per_row + 1, per_row, dtype=np.int64)
    kw = sp.csr_matrix((data, indices, indptr), shape=(n, 1 << 18))
    kw.sum_duplicates()
    idf = np.ones(1 << 18, dtype=np.float32)
    candidates = np.arange(n)
    # How busy the machine is: a fixed 20 GFLOP of float32 matmuls (0.3-0.4 s when idle).
    a = rng.standard_normal((1000, 1000)).astype(np.float32)
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    out = {"calibration_20_gflop_s": round(time.perf_counter() - t, 2)}
    for method in METHODS:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            s = scores_for(method, vecs, candidates, examples, keywords=(kw, idf))
            np.argpartition(-s, 19)[:20]
            times.append(time.perf_counter() - t)
        out[method] = round(float(np.median(times)), 3)
    out["load_average"] = round(os.getloadavg()[0], 1)
    vecs.close()
    path.unlink()
    return out


def child_memory(path: Path, method: str, mapped: bool) -> None:
    """Score a catalog in this fresh process; print its peak RSS (VmHWM) before and after."""

    def peak_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    examples = examples_from(path, 600)
    vecs = np.load(path, mmap_mode="r") if mapped else ann.Rows(path)
    before = peak_mb()
    t = time.perf_counter()
    s = scores_for(method, vecs, np.arange(int(vecs.shape[0])), examples)
    np.argpartition(-s, 19)[:20]
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - t, 2),
                "peak_rss_mb_before": round(before),
                "peak_rss_mb": round(peak_mb()),
            }
        )
    )


def memory(work: Path, n: int) -> dict[str, object]:
    """Peak RSS of scoring n papers with `svm` (the default above KEYWORD_MAX, where the
    catalog has no keyword features), read as recommend reads them (ann.Rows) and, as the
    baseline, through a memory map (as recommend read them before)."""
    path = synthetic_catalog(work, n)
    out: dict[str, object] = {"n": n, "vectors_mb": round(path.stat().st_size / 1e6)}
    for label, mapped in (("pread_blocks", False), ("memory_map", True)):
        args = ["--child-memory", str(path), "--method", "svm"] + (["--mapped"] if mapped else [])
        res = subprocess.run(
            [sys.executable, __file__, *args], check=True, capture_output=True, text=True
        )
        out[label] = json.loads(res.stdout.strip().splitlines()[-1])
    out["load_average"] = round(os.getloadavg()[0], 1)
    path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommend-bench"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--only-speed", action="store_true")
    parser.add_argument(
        "--memory-n", type=int, default=1_000_000, help="Catalog size for the peak-RSS figure."
    )
    parser.add_argument("--child-memory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="svm", help=argparse.SUPPRESS)
    parser.add_argument("--mapped", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        return child_memory(args.child_memory, args.method, args.mapped)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.only_speed:
        result = {
            "seconds_at_100k_600_positives": speed(args.work),
            "peak_rss_scoring": memory(args.work, args.memory_n),
        }
        print(json.dumps(result, indent=2))
        return
    lib = build_notes(args.work)
    result: dict[str, object] = {"quality": quality(lib, args.seeds)}
    print(json.dumps(result, indent=2), file=sys.stderr, flush=True)
    if not args.skip_speed:
        result["seconds_at_100k_600_positives"] = speed(args.work)
        result["peak_rss_scoring"] = memory(args.work, args.memory_n)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
