"""Which IVF-PQ variant for the catalog index: PQ48, PQ96 and 4-bit fast-scan PQ192 side by side.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ann_variants.py --n 1000000 \\
        --factory "IVF{nlist},PQ96" --factory "IVF{nlist},PQ48" --factory "IVF{nlist},PQ192x4fs"

The data, queries and ground truth are bench/ann_large.py's (generated once into --work and
reused). Each variant is built in this process (no peak-RSS figure: bench/ann_large.py gives
that for the chosen one) and queried one query at a time over a grid of nprobe (nlist/32,
/16, /8) and re-ranked candidates (256 to 4,096), re-ranking from the float16 rows as
catalog/ann.py does. Besides recall@10 it prints `cov`: the share of true neighbours whose list
is among those probed, the most any re-ranking could find, so the loss can be told apart:
lists not probed (cov below 1) or codes that rank a neighbour below the cut (recall below
cov). One JSON line per build and per grid point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ann_large  # noqa: E402

from search.catalog import ann  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--factory", action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ann-variants"))
    args = parser.parse_args()
    import faiss

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    ann_large.prepare(work, args.n, 384, 200)
    vp = work / "vectors.npy"
    qs = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    x = np.load(vp, mmap_mode="r")
    n = len(x)
    rng = np.random.default_rng(0)
    truth_rows = np.sort(np.unique(truth.ravel()))
    for factory in args.factory:
        nlist = ann.nlist_for(n)
        spec = ann.factory_for(n, 384, factory)
        t = time.time()
        take = min(n, max(ann.TRAIN_MAX, 40 * nlist))
        sample = np.ascontiguousarray(x[np.sort(rng.choice(n, take, replace=False))], np.float32)
        index = faiss.index_factory(384, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.min_points_per_centroid = 1
        index.train(sample)
        del sample
        train_s = time.time() - t
        for s in range(0, n, ann.CHUNK):
            index.add(np.ascontiguousarray(x[s : s + ann.CHUNK], dtype=np.float32))
        build_s = time.time() - t
        # The list of each true neighbour (as the coarse quantizer assigns it).
        lists = ivf.quantizer.search(np.ascontiguousarray(x[truth_rows], np.float32), 1)[1]
        list_of = dict(zip(truth_rows.tolist(), lists.ravel().tolist(), strict=True))
        print(
            json.dumps({"spec": spec, "train_s": round(train_s, 1), "build_s": round(build_s, 1)})
        )
        for nprobe in (nlist // 32, nlist // 16, nlist // 8):
            ivf.nprobe = nprobe
            _, probed = ivf.quantizer.search(qs, nprobe)
            cov = np.mean(
                [[list_of[r] in set(probed[i]) for r in truth[i]] for i in range(len(qs))]
            )
            for rerank in (256, 1024, 2048, 4096):
                times, hits = [], 0
                for i, q in enumerate(qs):
                    t = time.perf_counter()
                    _, cand = index.search(q[None], rerank)
                    c = np.unique(cand[0][cand[0] >= 0])
                    exact = np.asarray(x[c], np.float32) @ q
                    best = c[np.argsort(-exact)[:10]]
                    times.append(time.perf_counter() - t)
                    hits += len(set(best.tolist()) & set(truth[i].tolist()))
                row = {
                    "nprobe": nprobe,
                    "rerank": rerank,
                    "cov": round(float(cov), 3),
                    "recall": hits / (10 * len(qs)),
                    "p50": round(float(np.median(times)) * 1000, 1),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
