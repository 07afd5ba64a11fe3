"""The FAISS side of the index: vectors keyed by chunk id, exact inner product on unit vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexDamaged


def _faiss() -> Any:
    import faiss

    return faiss


def new_index(dim: int) -> Any:
    """An empty exact index: inner product over L2-normalised vectors is cosine similarity."""
    faiss = _faiss()
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


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


def write(index: Any, path: Path) -> None:
    _faiss().write_index(index, str(path))
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def read(path: Path, expected_size: int | None, expected_total: int | None) -> Any:
    """Load a FAISS file, checking it is whole; a damaged one raises IndexDamaged."""
    try:
        size = path.stat().st_size
    except OSError:
        raise IndexDamaged(f"vector file {path.name} is missing") from None
    if expected_size is not None and size != expected_size:
        raise IndexDamaged(f"vector file {path.name} has {size} bytes, expected {expected_size}")
    faiss = _faiss()
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        raise IndexDamaged(f"vector file {path.name} cannot be read") from None
    if expected_total is not None and index.ntotal != expected_total:
        raise IndexDamaged(
            f"vector file {path.name} holds {index.ntotal} vectors, expected {expected_total}"
        )
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) for each query row; ids of -1 mark empty slots."""
    k = max(1, min(k, int(index.ntotal)))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def reconstruct(index: Any, ids: list[int]) -> np.ndarray:
    """The stored vectors of `ids` (in that order)."""
    dim = index.d
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for i, vid in enumerate(ids):
        out[i] = index.reconstruct(int(vid))
    return out
