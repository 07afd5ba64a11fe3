"""Search at scale: recall@10 against exact, per-query latency and memory of the IVF index.

    .venv/bin/python bench/search_large.py [--n 1000000] [--dim 384] [--queries 300]

Data: a Gaussian mixture (n/1000 centres on the unit sphere, each point = centre + noise of norm
~2.0, normalised), like sentence embeddings, which cluster by topic; not uniform noise, where
no index can do better than a scan. Queries: data points plus noise of norm ~1.0, normalised
(a question lands near, not on, the chunks that answer it). Ground truth: exact inner-product
search (IndexFlatIP) over the same vectors.

The index is built exactly as `papers rebuild` builds it above vectors.EXACT_MAX
(vectors.finish), written with vectors.write, then a fresh process loads it with vectors.read
and times single queries (batch of one, as `papers ask` does), so the memory figure is what a
query process holds. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.storage import vectors  # noqa: E402


def data(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 1000), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x = centres[rng.integers(0, len(centres), m)]
        x += rng.standard_normal((m, dim)).astype(np.float32) * (2.0 / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + m] = x
    return out


def queries_near(x: np.ndarray, q: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dim = x.shape[1]
    qs = x[rng.integers(0, len(x), q)].copy()
    qs += rng.standard_normal(qs.shape).astype(np.float32) * (1.0 / np.sqrt(dim))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return qs


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(args: argparse.Namespace, work: Path) -> dict[str, float]:
    import faiss

    t = time.perf_counter()
    x = data(args.n, args.dim)
    qs = queries_near(x, args.queries)
    gen_s = time.perf_counter() - t
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(x)
    _d, truth = exact.search(qs, 10)
    del exact
    t = time.perf_counter()
    flat = vectors.new_index(args.dim)
    ids = np.arange(args.n, dtype=np.int64) * 3 + 7  # ids are chunk ids, not positions
    flat.add_with_ids(x, ids)
    del x
    index, _trained = vectors.finish(flat, None)
    del flat
    build_s = time.perf_counter() - t
    vectors.write(index, work / "v.faiss")
    np.save(work / "q.npy", qs, allow_pickle=False)
    np.save(work / "truth.npy", ids[truth], allow_pickle=False)
    return {
        "generate_s": round(gen_s, 1),
        "build_ivf_s": round(build_s, 1),
        "nlist": int(index.nlist),
        "nprobe": int(index.nprobe),
        "build_peak_rss_mb": round(peak_rss_mb()),
        "faiss_file_mb": round((work / "v.faiss").stat().st_size / 2**20),
    }


def search(work: Path, nprobe: int | None) -> dict[str, float]:
    import faiss

    t = time.perf_counter()
    index = vectors.read(work / "v.faiss", None, None)
    load_s = time.perf_counter() - t
    if nprobe:
        index.nprobe = nprobe
    qs = np.load(work / "q.npy", allow_pickle=False)
    truth = np.load(work / "truth.npy", allow_pickle=False)
    times, hits = [], 0
    for i in range(len(qs)):
        t = time.perf_counter()
        _s, ids = vectors.search(index, qs[i : i + 1], 10)
        times.append(time.perf_counter() - t)
        hits += len(set(ids[0].tolist()) & set(truth[i].tolist()))
    return {
        "threads": faiss.omp_get_max_threads(),
        "nprobe": int(index.nprobe),
        "load_s": round(load_s, 2),
        "recall_at_10": round(hits / (10 * len(qs)), 4),
        "p50_ms": round(1000 * float(np.median(times)), 2),
        "p95_ms": round(1000 * float(np.percentile(times, 95)), 2),
        "search_peak_rss_mb": round(peak_rss_mb()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--nprobe", type=int, nargs="*", default=[])
    ap.add_argument("--search-only", metavar="DIR")
    args = ap.parse_args()
    if args.search_only:
        print(json.dumps(search(Path(args.search_only), args.nprobe[0] if args.nprobe else None)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out: dict[str, object] = {"n": args.n, "dim": args.dim, "queries": args.queries}
        out["build"] = build(args, work)
        runs = []
        for nprobe in [None, *args.nprobe]:
            cmd = [sys.executable, __file__, "--search-only", str(work)]
            if nprobe:
                cmd += ["--nprobe", str(nprobe)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
            runs.append(json.loads(res.stdout))
        out["search"] = runs
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
