"""The FAISS side of the index: vectors keyed by chunk id, inner product on unit vectors.

Which index type, by size (see docs/benchmarks.md, "Rebuilds and large indexes"):

* up to EXACT_MAX vectors: exact search, IndexIDMap2 over IndexFlatIP. On 2 cores one query
  scans 50k 384-d vectors in about 7 ms and 100k in about 17 ms, so exact search stays well
  inside the 20 ms budget up to here, and nothing can beat its recall.
* above EXACT_MAX: IndexIVFFlat (inner product), nlist ≈ 2·√n lists trained by k-means on a
  sample of at most 40·nlist vectors, NPROBE_FRACTION of the lists probed per query. Vectors are
  kept unquantised, so the only loss is a neighbour in a list not probed; on clustered
  synthetic data at 1M vectors recall@10 against exact is ≥ 0.95 (measured by
  bench/search_large.py). IVF removes ids natively (a hash-table direct map also lets
  `reconstruct` fetch a chunk's vector by id), so changed notes never force a full rebuild.
  HNSW was not chosen: it cannot remove vectors and its graph costs ~256 MB more at 1M.

`finish` moves an index across the threshold (with hysteresis), and retrains the IVF lists
when the collection has grown well past the size they were trained on.

Files are written with FAISS's own binary format (never pickle); `read` is given the size and
vector count the manifest expects and raises IndexDamaged when they differ.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from search.errors import damaged

# Exact search up to this many vectors; IVF above it.
EXACT_MAX = 50_000
# An IVF index shrunk below this many vectors becomes exact again (hysteresis, so a library
# near the threshold does not flip between index types on every rebuild).
EXACT_BACK = EXACT_MAX // 2
# Retrain the IVF lists when the collection is this many times larger than when trained.
RETRAIN_GROWTH = 4.0
# Share of the IVF lists probed per query (at least MIN_NPROBE): tuned for recall@10 ≥ 0.95.
NPROBE_FRACTION = 1 / 32
MIN_NPROBE = 16
# Vectors moved per step when converting between index types.
MOVE_BATCH = 65_536

Log = Callable[[str], None]


def _faiss() -> Any:
    import faiss  # lazy: ~150 ms to import; `--help`, `list` and keyword search never need it

    return faiss


def new_index(dim: int) -> Any:
    """An empty exact index: inner product over L2-normalised vectors is cosine similarity."""
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def kind(index: Any) -> str:
    """ "flat" (exact) or "ivf" (approximate)."""
    return "ivf" if _is_ivf(index) else "flat"


def _is_ivf(index: Any) -> bool:
    return isinstance(index, _faiss().IndexIVF)


def update(index: Any, remove: np.ndarray, vectors: np.ndarray, ids: np.ndarray) -> Any:
    """Remove the vectors of `remove` ids, then add `vectors` under `ids`. Returns the index."""
    if len(remove):
        index.remove_ids(np.ascontiguousarray(remove, dtype=np.int64))
    if len(ids):
        index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32),
            np.ascontiguousarray(ids, dtype=np.int64),
        )
    return index


def nlist_for(n: int) -> int:
    return int(min(65_536, max(64, round(2 * math.sqrt(n)))))


def nprobe_for(nlist: int) -> int:
    return int(min(nlist, max(MIN_NPROBE, round(nlist * NPROBE_FRACTION))))


def finish(index: Any, trained_on: int | None, log: Log = lambda s: None) -> tuple[Any, int | None]:
    """The index type that suits the index's size now: (index, size the IVF was trained on)."""
    n = int(index.ntotal)
    if not _is_ivf(index):
        if n <= EXACT_MAX:
            return index, None
        log(f"{n} vectors: building an approximate (IVF) index")
        return _to_ivf(index.d, n, _batches(index)), n
    if n < EXACT_BACK:
        log(f"{n} vectors: back to exact search")
        flat = new_index(index.d)
        for vecs, ids in _batches(index)():
            flat.add_with_ids(vecs, ids)
        return flat, None
    if trained_on and n > RETRAIN_GROWTH * trained_on:
        log(f"{n} vectors (trained on {trained_on}): retraining the IVF index")
        return _to_ivf(index.d, n, _batches(index)), n
    return index, trained_on


def _to_ivf(
    dim: int, n: int, batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
) -> Any:
    faiss = _faiss()
    nlist = nlist_for(n)
    sample_n = min(n, 40 * nlist)
    rng = np.random.default_rng(0)
    keep = n and sample_n / n
    parts = []
    for vecs, _ids in batches():
        parts.append(vecs[rng.random(len(vecs)) < keep])
    sample = np.ascontiguousarray(np.concatenate(parts)[:sample_n])
    del parts
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.min_points_per_centroid = 1  # a small sample is fine: no warning on stderr
    ivf.train(sample)
    del sample
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.nprobe = nprobe_for(nlist)
    for vecs, ids in batches():
        ivf.add_with_ids(vecs, ids)
    return ivf


def _batches(index: Any) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A re-iterable view of every (vectors, ids) of `index`, MOVE_BATCH at a time, without
    copying the whole index."""
    faiss = _faiss()

    def flat() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        inner = faiss.downcast_index(index.index)
        n, d = int(inner.ntotal), int(inner.d)
        xb = faiss.rev_swig_ptr(inner.get_xb(), n * d).reshape(n, d)
        ids = faiss.vector_to_array(index.id_map)
        for s in range(0, n, MOVE_BATCH):
            yield np.array(xb[s : s + MOVE_BATCH]), ids[s : s + MOVE_BATCH].copy()

    def ivf() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        inv, d = index.invlists, int(index.d)
        for li in range(int(index.nlist)):
            size = int(inv.list_size(li))
            if not size:
                continue
            codes = faiss.rev_swig_ptr(inv.get_codes(li), size * d * 4)
            ids = faiss.rev_swig_ptr(inv.get_ids(li), size)
            yield np.frombuffer(codes.tobytes(), dtype=np.float32).reshape(size, d), ids.copy()

    return ivf if _is_ivf(index) else flat


def iter_vectors(index: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every (vectors, ids) pair of `index`, MOVE_BATCH vectors at a time, whatever its type:
    for readers of the whole index (the map), without copying it all at once."""
    return _batches(index)()


def write(index: Any, path: Path) -> None:
    _faiss().write_index(index, str(path))
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def read(path: Path, expected_size: int | None, expected_total: int | None) -> Any:
    """Load a FAISS file, checking it is whole; a damaged one raises IndexDamaged."""
    try:
        size = path.stat().st_size
    except OSError:
        raise damaged(f"vector file {path.name} is missing") from None
    if expected_size is not None and size != expected_size:
        raise damaged(f"vector file {path.name} has {size} bytes, expected {expected_size}")
    faiss = _faiss()
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError):
        raise damaged(f"vector file {path.name} cannot be read") from None
    if expected_total is not None and index.ntotal != expected_total:
        raise damaged(
            f"vector file {path.name} holds {index.ntotal} vectors, expected {expected_total}"
        )
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) for each query row; ids of -1 mark empty slots."""
    k = max(1, min(k, int(index.ntotal)))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if len(queries) != 1:
        scores, ids = index.search(queries, k)
        return scores, ids
    # One question runs on one thread: a scan of 50k vectors takes ~7 ms on one core, and on a
    # busy machine waking FAISS's second OpenMP thread can wait a whole scheduler slice (warm
    # questions went from 62 to 34 ms p50, docs/benchmarks.md). The setting belongs to the
    # calling thread only, and is put back (a rebuild in the same thread trains on all cores).
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(threads)
    return scores, ids


def reconstruct(index: Any, ids: list[int]) -> np.ndarray:
    """The stored vectors of `ids` (in that order)."""
    dim = index.d
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for i, vid in enumerate(ids):
        out[i] = index.reconstruct(int(vid))
    return out
