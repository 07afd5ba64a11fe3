"""The map: which layout method, and what fitting and placing cost.

    python bench/map.py compare --n 10000            # UMAP vs PaCMAP vs openTSNE
    python bench/map.py sizes --sizes 1000 10000 50000
    python bench/map.py place --n 10000
    python bench/map.py compare --library /tmp/papers-web-7k   # real paper vectors

Vectors: a library's paper vectors (--library: the mean of each paper's chunks, as the map
uses) or, by default, synthetic ones shaped like a library of notes: unit vectors in 384-d
drawn around 60 topic centres with uneven topic sizes and noise. Quality is sklearn's
trustworthiness (10 neighbours, cosine) of the 2-D layout, computed on a random sample of
2,000 papers (the full n x n distance matrix of 50k papers does not fit). Each fit runs in
its own process so that its peak memory (VmHWM) is its own; the baseline measured in the same
run is a PCA layout of the same vectors (what a map costs at the least).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic(n: int, dim: int = 384, topics: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dim))
    weights = rng.pareto(1.5, topics) + 1
    labels = rng.choice(topics, size=n, p=weights / weights.sum())
    x = centres[labels] + rng.normal(scale=1.6, size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def library_vectors(library: Path) -> np.ndarray:
    """Each paper's vector (the mean of its chunks, as the map makes it) from the library's live
    generation, read straight from its FAISS file and chunks table (so an index written by an
    older schema still serves)."""
    import sqlite3

    import faiss

    from search.storage import map as library_map
    from search.storage import store

    gen = store.current_generation(library / "index")
    if gen is None:
        sys.exit(f"{library} has no index")
    index = faiss.read_index(str(gen / store.FAISS_NAME))
    db = sqlite3.connect(f"{(gen / store.DB_NAME).as_uri()}?mode=ro", uri=True)
    chunk_pid = {int(v): int(p) for v, p in db.execute("SELECT vid, pid FROM chunks")}
    db.close()
    return library_map.paper_vectors(index, chunk_pid, sorted(set(chunk_pid.values())))


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


def fit_one(args: argparse.Namespace) -> None:
    """(in a child process) fit one layout; print seconds, trustworthiness and peak RSS."""
    from sklearn.manifold import trustworthiness

    from search.storage import map as library_map

    x = np.load(args.vectors)
    start = time.perf_counter()
    cpu = time.process_time()
    if args.full:
        data = library_map.MapInput(
            ids=[str(i) for i in range(len(x))],
            titles=[""] * len(x),
            sections=[[] for _ in range(len(x))],
            texts=[""] * len(x),
            hashes=[""] * len(x),
            vectors=x,
        )
        xy = np.array([[p.x, p.y] for p in library_map.compute(data, method=args.method).points])
    else:
        xy = library_map.fit_layout(x, args.method)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    rng = np.random.default_rng(1)
    sample = rng.choice(len(x), size=min(2000, len(x)), replace=False)
    trust = trustworthiness(x[sample], xy[sample], n_neighbors=10, metric="cosine")
    print(json.dumps({"seconds": seconds, "cpu": cpu, "trust": trust, "rss_mb": peak_rss_mb()}))


def run_fit(vectors: Path, method: str, full: bool = False) -> dict[str, float]:
    """Fit in a child process. Adds the child's whole wall time and CPU time (user + system,
    imports and numba's compilation included) as process_s and process_cpu_s."""
    cmd = [sys.executable, __file__, "fit", "--vectors", str(vectors), "--method", method]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        cmd + (["--full"] if full else []), check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    result["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    return result


def vectors_file(args: argparse.Namespace, n: int) -> Path:
    """n synthetic vectors, or n of the library's papers (a random sample when it has more)."""
    if args.library:
        x = library_vectors(args.library)
        if n < len(x):
            x = x[np.sort(np.random.default_rng(3).choice(len(x), size=n, replace=False))]
    else:
        x = synthetic(n)
    path = Path(f"/tmp/papers-bench-map-{len(x)}-{'lib' if args.library else 'syn'}.npy")
    np.save(path, x)
    return path


def compare(args: argparse.Namespace) -> None:
    path = vectors_file(args, args.n)
    n = len(np.load(path))
    print("| method | n | fit s | fit CPU s | vs PCA (CPU) | trustworthiness@10 | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = run_fit(path, "pca")
    for method in ["pca", *args.methods]:
        r = base if method == "pca" else run_fit(path, method)
        print(
            f"| {method} | {n} | {r['seconds']:.1f} | {r['cpu']:.1f} "
            f"| {r['cpu'] / base['cpu']:.0f}x | {r['trust']:.3f} | {r['rss_mb']:.0f} |",
            flush=True,
        )


def sizes(args: argparse.Namespace) -> None:
    print(
        "| n | map (layout + k-means + labels) s | its CPU s | PCA baseline s "
        "| trustworthiness@10 | peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        path = vectors_file(args, n)
        base = run_fit(path, "pca")
        r = run_fit(path, args.method, full=True)
        print(
            f"| {n} | {r['seconds']:.1f} | {r['cpu']:.1f} | {base['seconds']:.2f} "
            f"| {r['trust']:.3f} | {r['rss_mb']:.0f} |",
            flush=True,
        )


def place(args: argparse.Namespace) -> None:
    """A map of n papers, then one more: placed (no refit) vs the full refit it avoids."""
    from search.storage import map as library_map

    x = np.load(vectors_file(args, args.n + 1))
    n = len(x) - 1
    data = library_map.MapInput(
        ids=[str(i) for i in range(n)],
        titles=[f"t{i}" for i in range(n)],
        sections=[[] for _ in range(n)],
        texts=[f"word{i % 97} topic{i % 13}" for i in range(n)],
        hashes=[""] * n,
        vectors=x[:n],
    )
    start = time.perf_counter()
    first = library_map.compute(data, method=args.method)
    fit = time.perf_counter() - start
    data.ids.append("new")
    data.titles.append("new")
    data.sections.append([])
    data.texts.append("word1 topic2")
    data.hashes.append("")
    data.vectors = x
    times = []
    for _ in range(5):
        start = time.perf_counter()
        placed = library_map.compute(data, first, method=args.method)
        times.append(time.perf_counter() - start)
    assert placed.placed_since_fit == 1
    med = sorted(times)[2]
    print("| n | full fit s | one new paper placed s (median of 5) | ratio |")
    print("|---:|---:|---:|---:|")
    print(f"| {n} | {fit:.1f} | {med:.3f} | {fit / med:.0f}x |")


def small(args: argparse.Namespace) -> None:
    """What a small rebuild pays for its map: a fresh process (as every `papers rebuild` is)
    that imports the map code and makes the whole map (layout, k-means, labels) of n papers;
    its whole wall and CPU time, so imports and numba's compilation count. Baseline: the same
    process making a PCA map (the map's fixed cost without any layout library). CPU seconds
    are the steadier figure on a shared machine."""
    print(
        "| n | method | process wall s | process CPU s | CPU over the PCA process s "
        "| trustworthiness@10 |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for n in args.sizes:
        path = vectors_file(args, n)
        base = run_fit(path, "pca", full=True)
        for method in ["pca", *args.methods]:
            r = base if method == "pca" else run_fit(path, method, full=True)
            over = r["process_cpu_s"] - base["process_cpu_s"]
            print(
                f"| {n} | {method} | {r['process_s']:.1f} | {r['process_cpu_s']:.1f} "
                f"| {over:+.1f} | {r['trust']:.3f} |",
                flush=True,
            )


def trust_of_rows(x: np.ndarray, xy: np.ndarray, rows: np.ndarray, k: int = 10) -> float:
    """sklearn's trustworthiness (cosine), summed over `rows` only: how many of each row's k
    nearest points on the map are not among its k nearest in the vectors, weighted by how far
    down the vector ranking they are (1.0: none)."""
    n = len(x)
    penalty = 0.0
    for s in range(0, len(rows), 256):
        part = rows[s : s + 256]
        sims = x[part] @ x.T
        sims[np.arange(len(part)), part] = np.inf  # self first, rank 0
        order = np.argsort(-sims, axis=1)
        ranks = np.empty_like(order)
        ranks[np.arange(len(part))[:, None], order] = np.arange(n)[None, :]
        d2 = ((xy[part, None, :] - xy[None, :, :]) ** 2).sum(-1)
        d2[np.arange(len(part)), part] = np.inf
        near = np.argpartition(d2, k, axis=1)[:, :k]
        r = np.take_along_axis(ranks, near, axis=1)
        penalty += float(np.maximum(r - k, 0).sum())
    return 1.0 - 2.0 / (len(rows) * k * (2.0 * n - 3.0 * k - 1.0)) * penalty


def transform(model: object, method: str, new: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """The method's own placement of `new` into a fitted layout (what a pickled model does)."""
    if method == "opentsne":
        return np.asarray(model.transform(new))  # type: ignore[attr-defined]
    if method == "pacmap":
        return np.asarray(model.transform(new, basis=fitted))  # type: ignore[attr-defined]
    return np.asarray(model.transform(new))  # type: ignore[attr-defined]


def weighted_mean_place(new: np.ndarray, mapped: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """How the map placed papers before: the similarity-weighted mean of the 10 nearest."""
    sims = new @ mapped.T
    out = np.zeros((len(new), 2))
    for i, row in enumerate(np.argpartition(-sims, 9, axis=1)[:, :10]):
        d = 1.0 - sims[i, row]
        w = np.exp(-(d - d.min()) / max(float(d.mean() - d.min()), 1e-6))
        out[i] = (xy[row] * w[:, None]).sum(axis=0) / w.sum()
    return out


def placed(args: argparse.Namespace) -> None:
    """How well new papers are placed: neighbour average vs the method's transform vs refit."""
    from search.storage import map as library_map

    x = np.load(vectors_file(args, args.n))
    rng = np.random.default_rng(2)
    new = np.sort(rng.choice(len(x), size=args.new, replace=False))
    old = np.setdiff1d(np.arange(len(x)), new)
    model = library_map.layout_model(args.method, len(old))
    map_perplexity = float(getattr(model, "perplexity", 0.0))  # the map's own t-SNE setting
    start = time.perf_counter()
    if args.method == "opentsne":
        model = model.fit(x[old])  # the fitted embedding is what transforms
        # a copy: `transform` centres the embedding in place, which would move a view of it
        fit_xy = np.array(model)
    else:
        fit_xy = np.asarray(model.fit_transform(x[old]))
    fit_s = time.perf_counter() - start
    results = {}
    start = time.perf_counter()
    results["(before: similarity-weighted mean of the 10 nearest)"] = (
        weighted_mean_place(x[new], x[old], fit_xy),
        time.perf_counter() - start,
    )
    start = time.perf_counter()
    nb_xy, _ = library_map.place(x[new], x[old], fit_xy)
    results["the map's `place`: median of the 25 nearest"] = (nb_xy, time.perf_counter() - start)
    if args.method == "opentsne":
        # the map's coordinates and what map.json keeps to undo their scaling
        map_xy, scale, offset = library_map._scaled_with(fit_xy)
        settings = [
            (
                library_map.TRANSFORM_PERPLEXITY,
                library_map.TRANSFORM_GRADIENT,
                "as the map runs it",
            ),
            (library_map.TRANSFORM_PERPLEXITY, "fft", "interpolation grid"),
            (map_perplexity, library_map.TRANSFORM_GRADIENT, "the fit's perplexity"),
        ]
        for perplexity, gradient, why in settings:
            start = time.perf_counter()
            pt_xy, _ = library_map.place_tsne(
                x[new], x[old], map_xy, scale, offset, perplexity=perplexity, gradient=gradient
            )
            name = f"`place_tsne`, {why}: perplexity {perplexity:g}, {gradient}"
            results[name] = (pt_xy * scale + offset, time.perf_counter() - start)
    start = time.perf_counter()
    tr_xy = transform(model, args.method, x[new], x[old])
    if args.method == "opentsne":  # back from the centred embedding `transform` placed into
        tr_xy = tr_xy + (fit_xy.max(axis=0) + fit_xy.min(axis=0)) / 2
    results[f"{args.method} transform"] = (tr_xy, time.perf_counter() - start)
    rows = np.arange(len(old), len(x))  # the new papers, after the fitted ones
    order = np.concatenate([old, new])
    print(f"{len(old)} papers fitted ({fit_s:.1f} s), {len(new)} new papers placed\n")
    print("| new papers placed by | trustworthiness@10 of the new papers | seconds (all new) |")
    print("|---|---:|---:|")
    for name, (xy_new, secs) in results.items():
        xy = np.concatenate([fit_xy, xy_new])
        print(f"| {name} | {trust_of_rows(x[order], xy, rows):.3f} | {secs:.2f} |", flush=True)
    start = time.perf_counter()
    full = library_map.fit_layout(x[order], args.method)
    secs = time.perf_counter() - start
    print(f"| baseline: full refit | {trust_of_rows(x[order], full, rows):.3f} | {secs:.1f} |")
    some_fitted = np.arange(min(2000, len(old)))
    fitted_trust = trust_of_rows(x[order], np.concatenate([fit_xy, nb_xy]), some_fitted)
    print(f"| (for scale: 2,000 of the fitted papers) | {fitted_trust:.3f} | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("compare", "sizes", "place", "placed", "small"):
        p = sub.add_parser(name)
        p.add_argument("--library", type=Path, default=None)
        p.add_argument("--n", type=int, default=10000)
        p.add_argument("--method", default="umap")
        p.add_argument("--methods", nargs="+", default=["umap", "pacmap", "opentsne"])
        p.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 50000])
        p.add_argument("--new", type=int, default=500)
    f = sub.add_parser("fit")
    f.add_argument("--vectors", type=Path, required=True)
    f.add_argument("--method", required=True)
    f.add_argument("--full", action="store_true")
    args = ap.parse_args()
    {
        "compare": compare,
        "sizes": sizes,
        "place": place,
        "placed": placed,
        "small": small,
        "fit": fit_one,
    }[args.cmd](args)


if __name__ == "__main__":
    main()
