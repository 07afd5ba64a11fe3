"""The catalog index over millions: IVF-PQ with exact float16 re-ranking (search/catalog/ann.py).

    .venv/bin/python bench/ann_large.py [--n 3000000] [--dim 384] [--queries 200]
        [--factory "IVF{nlist},PQ{m}x4fs" ...] [--work DIR [--prepare] [--reuse-index]]

Data: a Gaussian mixture like bench/search_large.py's (n/1000 centres on the unit sphere,
points = centre + noise, normalised), written straight to a float16 .npy on disk in chunks,
as `papers catalog embed` writes merged/vectors.npy: the float32 matrix (4.6 GB at 3M) is
never in memory. Queries are data points plus noise. Ground truth: exact inner product over the
same float16 vectors, streamed.

The build (ann.build) and the queries run in fresh processes so that each one's peak RSS
(VmHWM) is its own. Queries are timed one at a time (a batch of one, as `ask --catalog` does),
excluding the encoder, over a grid of nprobe (half to twice the default) and re-ranked
candidates; each grid point also gives the share of true neighbours inside the probed lists,
the most any re-ranking can find. Baseline in the same run: an exact scan of the float16
matrix (ann.search without an index). Prints one JSON object.

With --work the data and ground truth (minutes at 3M) are kept and reused, and with
--reuse-index an index built there before by the same factory is queried again (its build
figures are those recorded in build.json when it was built).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.catalog import ann  # noqa: E402


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def generate(path: Path, n: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 1000), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x = centres[rng.integers(0, len(centres), m)]
        x += rng.standard_normal((m, dim)).astype(np.float32) * (2.0 / np.sqrt(dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + m] = x
    out.flush()
    del out


def queries_near(path: Path, q: int, seed: int = 1) -> np.ndarray:
    x = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(seed)
    dim = x.shape[1]
    qs = np.asarray(x[np.sort(rng.integers(0, len(x), q))], dtype=np.float32)
    qs += rng.standard_normal(qs.shape).astype(np.float32) * (1.0 / np.sqrt(dim))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return qs


def exact_top10(path: Path, qs: np.ndarray) -> np.ndarray:
    """Exact top-10 rows per query, streamed with a running top-k (bounded memory)."""
    x = np.load(path, mmap_mode="r")
    best_s = np.full((len(qs), 10), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(qs), 10), dtype=np.int64)
    for s in range(0, len(x), ann.CHUNK):
        part = np.asarray(x[s : s + ann.CHUNK], dtype=np.float32)
        scores = qs @ part.T
        cand_s = np.concatenate([best_s, scores], axis=1)
        cols = np.arange(s, s + len(part))
        cand_i = np.concatenate([best_i, np.broadcast_to(cols, scores.shape)], axis=1)
        top = np.argpartition(-cand_s, 9, axis=1)[:, :10]
        best_s = np.take_along_axis(cand_s, top, axis=1)
        best_i = np.take_along_axis(cand_i, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def child_build(work: Path, factory: str) -> None:
    t = time.perf_counter()
    ann.build(
        work / "vectors.npy",
        work / ann.ANN_FILE,
        log=lambda s: print(s, file=sys.stderr),
        factory=factory,
    )
    built = {
        "factory": factory,
        "build_s": time.perf_counter() - t,
        "build_peak_rss_mb": peak_rss_mb(),
        "build_load_average": os.getloadavg(),
    }
    (work / "build.json").write_text(json.dumps(built))
    print(json.dumps(built))


def child_query(work: Path, k: int) -> None:
    t = time.perf_counter()
    index = ann.load(work / ann.ANN_FILE)
    vecs = ann.Rows(work / "vectors.npy")
    load_s = time.perf_counter() - t
    qs = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    ivf = ann.ivf_of(index)
    default_nprobe = int(ivf.nprobe)
    # The list each true neighbour is in: the share of them in the probed lists ("cov") is the
    # most any re-ranking can find, which tells a loss from probing apart from one by the codes
    # (for an index without a rotation in front of its lists).
    truth_rows = np.unique(truth[:, :k])
    in_list = ivf.quantizer.search(vecs.take(truth_rows), 1)[1].ravel()
    list_of = dict(zip(truth_rows.tolist(), in_list.tolist(), strict=True))
    grid = []
    for nprobe in (default_nprobe // 2, default_nprobe, 2 * default_nprobe):
        probed = ivf.quantizer.search(qs, nprobe)[1]
        cov = np.mean(
            [[list_of[r] in set(probed[i]) for r in truth[i, :k]] for i in range(len(qs))]
        )
        for rerank in (512, 1024, 2048, 4096):
            ivf.nprobe = nprobe
            times, hits = [], 0
            for i, q in enumerate(qs):
                t = time.perf_counter()
                _, rows = ann.search(index, vecs, q, k, rerank=rerank)
                times.append(time.perf_counter() - t)
                hits += len(set(rows[0].tolist()) & set(truth[i, :k].tolist()))
            ms = np.asarray(times) * 1000
            grid.append(
                {
                    "nprobe": nprobe,
                    "rerank": rerank,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p95_ms": float(np.percentile(ms, 95)),
                    "recall_at_10": hits / (k * len(qs)),
                    "neighbours_in_probed_lists": float(cov),
                }
            )
            print(grid[-1], file=sys.stderr)
    # Memory of the query process: before the exact-scan baseline, which maps every page.
    query_rss, query_peak = rss_mb(), peak_rss_mb()
    exact_times = []
    for q in qs[:3]:
        t = time.perf_counter()
        ann.search(None, vecs, q, k)
        exact_times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "load_s": load_s,
                "grid": grid,
                "exact_scan_p50_ms": float(np.median(exact_times) * 1000),
                "query_rss_mb": query_rss,
                "query_peak_rss_mb": query_peak,
                "nlist": int(ivf.nlist),
                "default_nprobe": default_nprobe,
                "default_rerank": ann.RERANK,
            }
        )
    )


def prepare(work: Path, n: int, dim: int, queries: int) -> dict[str, float]:
    """Vectors, queries and exact top-10 in `work`, reused when a previous run made the same."""
    want = {"n": n, "dim": dim, "queries": queries}
    meta_path = work / "data.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) == want:
        return {}
    t = time.perf_counter()
    generate(work / "vectors.npy", n, dim)
    qs = queries_near(work / "vectors.npy", queries)
    np.save(work / "queries.npy", qs)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    np.save(work / "truth.npy", exact_top10(work / "vectors.npy", qs))
    meta_path.write_text(json.dumps(want))
    return {"generate_s": gen_s, "truth_s": time.perf_counter() - t}


def run_child(args: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(
    work: Path, n: int, dim: int, factories: list[str], reuse: bool = False
) -> dict[str, object]:
    result: dict[str, object] = {"load_average": os.getloadavg()}
    runs = []
    for factory in factories:
        run: dict[str, object] = {"factory": ann.factory_for(n, dim, factory)}
        built = work / "build.json"
        earlier = json.loads(built.read_text()) if reuse and built.is_file() else {}
        if earlier and ann.factory_for(n, dim, earlier["factory"]) == run["factory"]:
            run.update(earlier, factory=run["factory"], build_reused=True)
        else:
            run.update(run_child(["--child", "build", "--work", str(work), "--factory", factory]))
        run["index_mb"] = (work / ann.ANN_FILE).stat().st_size / 1e6
        run.update(run_child(["--child", "query", "--work", str(work)]))
        run["load_average_after"] = os.getloadavg()
        print(json.dumps(run), file=sys.stderr, flush=True)
        runs.append(run)
    result["runs"] = runs
    result["vectors_f16_mb"] = (work / "vectors.npy").stat().st_size / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--factory",
        action="append",
        help="Index to try (FAISS index_factory, {nlist} and {m} filled in as catalog/ann.py "
        f"does; repeatable). Default: ann.FACTORY, {ann.FACTORY!r}.",
    )
    parser.add_argument(
        "--work", type=Path, help="Keep the data here and reuse it (default: a temporary folder)."
    )
    parser.add_argument(
        "--prepare", action="store_true", help="Only write the data and ground truth to --work."
    )
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="Query the index in --work if it was built there with the same factory (its "
        "build figures are the ones recorded then, in build.json).",
    )
    parser.add_argument("--child", choices=["build", "query"])
    args = parser.parse_args()
    factories = args.factory or [ann.FACTORY]
    if args.child == "build":
        return child_build(args.work, factories[0])
    if args.child == "query":
        return child_query(args.work, 10)

    with tempfile.TemporaryDirectory(prefix="ann-bench-", dir="/tmp") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result: dict[str, object] = {"n": args.n, "dim": args.dim, "queries": args.queries}
        result.update(prepare(work, args.n, args.dim, args.queries))
        if not args.prepare:
            result.update(measure(work, args.n, args.dim, factories, args.reuse_index))
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
