"""Search over millions of catalog vectors: IVF-PQ in memory, exact re-ranking from float16
vectors on disk.

At arXiv scale (~2.7M abstracts, 384-d) the vectors alone are 4.1 GB as float32: more than a
query process should hold. IVF-PQ keeps 96 bytes per vector in memory (FACTORY: 4-bit
"fast-scan" PQ, two dimensions per sub-quantizer; 288 MB at 3M) and finds candidates; the
RERANK best candidates are then scored exactly against their float16 rows on disk, so the
ranking among them is exact and only a neighbour outside the probed lists, or pushed below the
cut by its code, is lost. Measured by bench/ann_large.py (docs/benchmarks.md, "The catalog
index over millions"), with the figures next to each setting below.

The index is built from the float16 matrix on disk in streamed chunks (training on a sample of
TRAIN_MAX rows), so building never holds the float32 matrix either. Row numbers are the ids.

Below ANN_MIN vectors a scan of the float16 matrix is exact and fast enough, and no index is
built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ANN_FILE = "ann.faiss"
# Below this many vectors: exact scan of the memory-mapped matrix (no index to build or load).
ANN_MIN = 200_000
# Rows sampled to train the coarse quantizer and PQ codebooks.
TRAIN_MAX = 160_000
# Rows converted to float32 at a time (build and scans): 64k x 384 x 4 B = 100 MB.
CHUNK = 65_536
# Rows converted to float32 at a time when a whole catalog is scored (recommend): 4k x 384 x
# 4 B = 6 MB, so scoring 2.7M papers needs no more memory than scoring 100k.
SCORE_BLOCK = 4_096
# Candidates from the IVF-PQ index re-scored exactly per query. With 96-byte codes at 3M
# vectors (benchmark) 512 already find every neighbour in the probed lists (recall@10 equal
# to that share at 512, 1024, 2048 and 4096); each more costs a read of its float16 row.
RERANK = 512
# Dimensions per PQ sub-quantizer, each a 4-bit code: dim / 2 sub-quantizers, 96 bytes a
# vector at 384-d (288 MB at 3M). At 1M vectors (bench/ann_large.py, docs/benchmarks.md)
# PQ48 (8 dimensions a byte) ranked true neighbours below the cut (recall@10 0.92 with 256
# re-ranked against 0.975 of them in the probed lists); 96 bytes, as PQ96 or as 4-bit
# "fast-scan" PQ192, lose nothing next to the lists; fast-scan (SIMD lookups in registers)
# searched 3-15x faster than PQ96 and trained 6x faster (no polysemous training).
PQ_DIMS = 2
# The index (FAISS index_factory; {nlist} and {m} are filled in from the size and dimension).
FACTORY = "IVF{nlist},PQ{m}x4fs"
# Share of lists probed. At 3M (benchmark) the lists are what loses neighbours: recall@10 was
# 0.875 probing 1/32, 0.903 with 1/16, 0.931 with 1/8 and 0.961 with 1/4 (p50 7-12 ms with
# 512 re-ranked; 4-bit codes are cheap to scan), each time the share of true neighbours
# inside the probed lists.
NPROBE_FRACTION = 1 / 4
MIN_NPROBE = 16

Log = Callable[[str], None]


def _faiss() -> Any:
    import faiss  # lazy: ~0.3 s to import, and small catalogs never need it

    return faiss


_blas: Any = None


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS runs on one thread. Scoring rows against a query is a
    matrix-vector product, bound by memory: one thread is as fast as two on an idle machine,
    and on a busy one OpenBLAS's threads wait for each other (measured at load average 12:
    4,096 x 384 rows times a vector took 20 ms with 2 threads, 0.45 ms with one)."""
    global _blas
    if _blas is None:
        # lazy: only scoring needs it; created after numpy is loaded, so it finds its BLAS
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def nlist_for(n: int) -> int:
    return int(min(65_536, max(64, round(2 * math.sqrt(n)))))


def pq_m(dim: int) -> int:
    """Sub-quantizers: dim / PQ_DIMS, lowered to a divisor of dim."""
    m = max(1, dim // PQ_DIMS)
    while dim % m:
        m -= 1
    return m


def factory_for(n: int, dim: int, factory: str = FACTORY) -> str:
    """The FAISS index_factory string for `n` vectors: FACTORY with {nlist} and {m} filled."""
    return factory.format(nlist=nlist_for(n), m=pq_m(dim))


def ivf_of(index: Any) -> Any:
    """The IVF part of an index (the index itself, or the one behind an OPQ rotation)."""
    return _faiss().extract_index_ivf(index)


def build(vectors_path: Path, out: Path, log: Log = lambda s: None, factory: str = FACTORY) -> None:
    """Train and fill an IVF-PQ index (inner product; `factory` as in FACTORY) over the
    float16 .npy at `vectors_path`, reading it in chunks; writes it to `out`."""
    faiss = _faiss()
    x = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
    n, dim = x.shape
    spec = factory_for(n, dim, factory)
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    ivf = ivf_of(index)
    nlist = int(ivf.nlist)
    rng = np.random.default_rng(0)
    take = min(n, max(TRAIN_MAX, 40 * nlist) if n > TRAIN_MAX else n)
    sample_rows = np.sort(rng.choice(n, size=take, replace=False))
    sample = np.ascontiguousarray(x[sample_rows], dtype=np.float32)
    ivf.cp.min_points_per_centroid = 1  # a sample below 39 per list is fine: no warning
    log(f"training {spec} on {take} vectors…")
    index.train(sample)
    del sample
    for s in range(0, n, CHUNK):
        part = np.ascontiguousarray(x[s : s + CHUNK], dtype=np.float32)
        index.add(part)
        if s and s % (CHUNK * 16) == 0:
            log(f"  {s}/{n} vectors added")
    ivf.nprobe = nprobe_for(nlist)
    tmp = out.with_name(out.name + ".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(out)


def nprobe_for(nlist: int) -> int:
    return int(min(nlist, max(MIN_NPROBE, round(nlist * NPROBE_FRACTION))))


def load(path: Path) -> Any:
    """The index at `path`, probing as NPROBE_FRACTION says now (a query-time choice: an
    index built with another setting needs no rebuild)."""
    index = _faiss().read_index(str(path))
    ivf = ivf_of(index)
    ivf.nprobe = nprobe_for(int(ivf.nlist))
    return index


class Rows:
    """Rows of a float16 .npy file read with pread, not mapped: the pages a query touches go
    to the OS cache instead of into the query process. Through a memory map each row read
    maps a whole large folio of the file (measured: gathering 2,048 random rows of a 1M-row
    file through a map raised the process's peak RSS by 692 MB on this machine's kernel, with
    or without MADV_RANDOM), so RSS would grow with every row ever re-ranked."""

    def __init__(self, path: Path):
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        self.shape: tuple[int, int] = (int(mapped.shape[0]), int(mapped.shape[1]))
        self.dtype = mapped.dtype
        self.offset = int(mapped.offset)
        del mapped
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def close(self) -> None:
        os.close(self.fd)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The given rows as float32, in the order given: one pread each, into one buffer."""
        raw = bytearray(len(rows) * self.row_bytes)
        view = memoryview(raw)
        size = self.row_bytes
        for i, start in enumerate((self.offset + np.asarray(rows, np.int64) * size).tolist()):
            os.preadv(self.fd, [view[i * size : (i + 1) * size]], start)
        out = np.frombuffer(raw, dtype=self.dtype).reshape(len(rows), self.shape[1])
        return out.astype(np.float32)

    def block(
        self, start: int, stop: int, out: np.ndarray | None = None, raw: bytearray | None = None
    ) -> np.ndarray:
        """Rows start..stop as float32, in one read; into `out` (a float32 array of at
        least stop - start rows) through `raw` (bytes of as many float16 rows) when given, so
        that a scan reuses two buffers instead of allocating for every block."""
        stop = min(stop, self.shape[0])
        count = stop - start
        size = count * self.row_bytes
        if raw is None or len(raw) < size:
            raw = bytearray(size)
        got = os.preadv(self.fd, [memoryview(raw)[:size]], self.offset + start * self.row_bytes)
        if got != size:
            raise OSError(f"short read of the vectors file ({got} of {size} bytes)")
        rows = np.frombuffer(raw, dtype=self.dtype, count=count * self.shape[1])
        rows = rows.reshape(count, self.shape[1])
        if out is None:
            return rows.astype(np.float32)
        np.copyto(out[:count], rows)
        return out[:count]


def take(vecs: Any, rows: np.ndarray) -> np.ndarray:
    """The given rows of `vecs` (Rows, or a float16 array or memory map) as float32."""
    return vecs.take(rows) if isinstance(vecs, Rows) else np.asarray(vecs[rows], np.float32)


def _block(vecs: Any, start: int, stop: int) -> np.ndarray:
    if isinstance(vecs, Rows):
        return vecs.block(start, stop)
    return np.asarray(vecs[start:stop], dtype=np.float32)


def blocks(
    vecs: Any, rows: np.ndarray | None = None, size: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """The given rows of `vecs` (every row when None; else ascending row numbers) as float32
    blocks of at most `size` (SCORE_BLOCK) rows, each with the position in `rows` of its
    first row: for scoring a whole catalog in bounded memory. A block may be a buffer that the
    next one overwrites: use it before asking for the next.

    A selection that covers at least 1/8 of its span of the file is read as contiguous spans
    (one read each) and filtered; a sparser one (a `--since` digest among millions) is
    gathered. Blocks are converted into one reused buffer: a fresh array per block costs its
    page faults every time, and a small buffer stays in the CPU cache."""
    size = size or SCORE_BLOCK
    n = int(vecs.shape[0])
    if rows is not None and not len(rows):
        return
    first, last = (0, n - 1) if rows is None else (int(rows[0]), int(rows[-1]))
    if rows is not None and len(rows) * 8 < last - first + 1:
        for s in range(0, len(rows), size):
            yield s, take(vecs, rows[s : s + size])
        return
    buf = np.empty((min(size, n), int(vecs.shape[1])), dtype=np.float32)
    raw = bytearray(len(buf) * vecs.row_bytes) if isinstance(vecs, Rows) else None
    pos = 0
    for s in range(first, last + 1, size):
        e = min(s + size, n)
        stop = e if rows is None else int(np.searchsorted(rows, e, side="left"))
        if stop > pos:
            if isinstance(vecs, Rows):
                part = vecs.block(s, e, out=buf, raw=raw)
            else:
                part = buf[: e - s]
                np.copyto(part, vecs[s:e])
            if rows is None or stop - pos == e - s:
                yield pos, part
            else:
                yield pos, part[rows[pos:stop] - s]
        pos = stop


def search(
    index: Any | None, vecs: Any, queries: np.ndarray, k: int, rerank: int = RERANK
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, rows) per query: IVF-PQ candidates re-scored exactly when `index` is
    given, else an exact scan of `vecs` (float16 rows: an array, a memory map or Rows)."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = int(vecs.shape[0])
    k = max(1, min(k, n))
    if index is None:
        with one_blas_thread():
            return top_k(scan(vecs, queries), k)
    _, cand = index.search(queries, max(k, rerank))
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    for qi, found in enumerate(cand):
        found = np.unique(found[found >= 0])  # sorted rows read the mapped file in order
        if not len(found):
            continue
        with one_blas_thread():
            exact = take(vecs, found) @ queries[qi]
        best = np.argsort(-exact, kind="stable")[:k]
        scores[qi, : len(best)] = exact[best]
        rows[qi, : len(best)] = found[best]
    return scores, rows


def scan(vecs: Any, queries: np.ndarray) -> np.ndarray:
    """Exact scores of every row against every query: (queries, rows) float32."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = int(vecs.shape[0])
    out = np.empty((len(queries), n), dtype=np.float32)
    for s in range(0, n, CHUNK):
        part = _block(vecs, s, s + CHUNK)
        out[:, s : s + len(part)] = queries @ part.T
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k (scores, columns) of each row of `scores`, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)
