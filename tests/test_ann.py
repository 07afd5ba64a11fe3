"""The IVF-PQ index with exact float16 re-ranking (small synthetic data; speed is a benchmark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.catalog import ann


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += rng.standard_normal((n, dim)).astype(np.float32) * 0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivfpq_with_reranking_finds_the_exact_neighbours(tmp_path: Path) -> None:
    x = clustered(6000, 64)
    path = tmp_path / "vectors.npy"
    np.save(path, x.astype(np.float16))
    ann.build(path, tmp_path / ann.ANN_FILE)
    index = ann.load(tmp_path / ann.ANN_FILE)
    assert index.ntotal == 6000 and ann.ivf_of(index).nprobe >= ann.MIN_NPROBE
    vecs = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((50, 64)).astype(np.float32) * 0.1
    queries = x[rng.integers(0, len(x), 50)] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, exact = ann.search(None, vecs, queries, 10)
    scores, found = ann.search(index, vecs, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.9
    # Rows read from the file (not mapped) give the same answers.
    rows_on_disk = ann.Rows(path)
    scores_disk, found_disk = ann.search(index, rows_on_disk, queries, 10)
    assert np.array_equal(found_disk, found) and np.allclose(scores_disk, scores)
    assert np.array_equal(rows_on_disk.block(10, 20), np.asarray(vecs[10:20], np.float32))
    _, exact_disk = ann.search(None, rows_on_disk, queries, 10)
    assert np.array_equal(exact_disk, exact)
    rows_on_disk.close()
    # Re-ranked scores are exact (float16 rows) and sorted.
    for q, rows, s in zip(queries, found, scores, strict=True):
        expect = np.asarray(vecs[rows], dtype=np.float32) @ q
        assert np.allclose(s, expect, atol=1e-5)
        assert np.all(np.diff(s) <= 1e-6)


def test_exact_scan_and_top_k() -> None:
    x = clustered(500, 16)
    scores, rows = ann.search(None, x.astype(np.float16), x[:3], 5)
    assert list(rows[:, 0]) == [0, 1, 2]
    assert scores.shape == (3, 5) and np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("dim, m", [(384, 192), (64, 32), (100, 50), (7, 1), (6, 3)])
def test_pq_sub_quantizers_divide_the_dimension(dim: int, m: int) -> None:
    assert ann.pq_m(dim) == m and dim % ann.pq_m(dim) == 0


def test_merge_builds_the_index_above_the_threshold(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from search.catalog.catalog import Catalog, Embeddings, catalog_dir, search_catalog, write_shard
    from search.library import library_paths

    monkeypatch.setattr(ann, "ANN_MIN", 1000)
    paths = library_paths()
    rows = [{"title": f"paper number {i}", "abstract": f"text {i}"} for i in range(3000)]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cat = Catalog.open(catalog_dir(paths), create=True)
    cat.add_files([src])
    cids, hashes = cat.hashes()
    x = clustered(len(cids), 32)
    store = Embeddings.of(paths, "test-fingerprint")
    write_shard(store.shards, hashes, x)
    merged = store.merge(cat)
    assert merged.meta["ann"] == ann.ANN_FILE and (merged.folder / ann.ANN_FILE).is_file()
    hits = search_catalog(paths, "test-fingerprint", x[123], 5)
    assert hits[0].paper.title == "paper number 123"
    # An index of another kind (made before the default changed) is made again by a merge.
    assert store.is_current(cat)
    meta_path = merged.folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["ann_index"] = "IVF110,PQ16"
    meta_path.write_text(json.dumps(meta))
    assert not store.is_current(cat)
    assert store.merge(cat).meta["ann_index"] == ann.factory_for(3000, 32)
    assert store.is_current(cat)


@pytest.mark.parametrize(
    "pick",
    ["every", "all", "dense", "sparse", "none", "one"],
)
def test_blocks_give_the_chosen_rows_in_order(tmp_path: Path, pick: str) -> None:
    x = clustered(1000, 8)
    path = tmp_path / "vectors.npy"
    np.save(path, x.astype(np.float16))
    rng = np.random.default_rng(2)
    rows = {
        "every": None,
        "all": np.arange(1000),
        "dense": np.sort(rng.choice(1000, 700, replace=False)),  # read as spans, filtered
        "sparse": np.sort(rng.choice(1000, 40, replace=False)),  # gathered
        "none": np.zeros(0, dtype=np.int64),
        "one": np.array([999]),
    }[pick]
    expect = x.astype(np.float16).astype(np.float32)[slice(None) if rows is None else rows]
    on_disk = ann.Rows(path)
    for vecs in (on_disk, np.load(path, mmap_mode="r")):
        # A block may be a reused buffer: copy each before asking for the next.
        parts = [(s, p.copy()) for s, p in ann.blocks(vecs, rows, size=64)]
        assert all(len(p) <= 64 for _, p in parts)
        starts = [s for s, _ in parts]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        got = np.concatenate([p for _, p in parts]) if parts else np.zeros((0, 8), np.float32)
        assert np.array_equal(got, expect)
        for s, p in parts:
            assert np.array_equal(p, expect[s : s + len(p)])
    on_disk.close()


def test_probing_is_chosen_when_the_index_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = clustered(3000, 16)
    path = tmp_path / "vectors.npy"
    np.save(path, x.astype(np.float16))
    ann.build(path, tmp_path / ann.ANN_FILE)
    nlist = ann.ivf_of(ann.load(tmp_path / ann.ANN_FILE)).nlist
    monkeypatch.setattr(ann, "MIN_NPROBE", 1)
    monkeypatch.setattr(ann, "NPROBE_FRACTION", 1 / 4)
    assert ann.ivf_of(ann.load(tmp_path / ann.ANN_FILE)).nprobe == round(nlist / 4)
