"""A rebuild embeds through the ONNX export on every core, in length-sorted batches, and its
vectors are sentence-transformers' own; without an export it falls back to torch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from search import build
from search.encoders import index_encoder
from search.encoders.encoder import resolve_model
from search.encoders.onnx_encoder import OnnxEncoder, UnsupportedModel
from search.library import Paths
from search.storage import vectors
from search.storage.store import Index

from .conftest import SEED

# -- logic: a fake session and tokenizer, no model ----------------------------------------------


class _Session:
    """Token embeddings that depend only on the token's own id; records each batch's shape."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def get_inputs(self) -> list[Any]:
        return [SimpleNamespace(name="input_ids"), SimpleNamespace(name="attention_mask")]

    def run(self, _outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        ids = feeds["input_ids"]
        self.shapes.append(ids.shape)
        return [np.stack([ids, ids * 2 + 1], axis=-1).astype(np.float32)]


class _Tokenizer:
    """One token per word, its id the word's length: a text's vector is its mean word length."""

    def encode_batch(self, texts: list[str]) -> list[Any]:
        out = []
        for text in texts:
            ids = [len(w) for w in text.split()]
            out.append(SimpleNamespace(ids=ids, type_ids=[0] * len(ids)))
        return out


def _fake_onnx() -> tuple[OnnxEncoder, _Session]:
    session = _Session()
    config = {
        "pooling_mode": ["mean"],
        "normalize": False,
        "dim": 2,
        "pad_token_id": 0,
        "max_seq_length": 512,
    }
    return OnnxEncoder(session, _Tokenizer(), config), session


def test_length_sorted_batches_return_vectors_in_input_order() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=101)
    texts = [" ".join("w" * int(rng.integers(1, 9)) for _ in range(n)) for n in lengths]
    enc, session = _fake_onnx()
    seen: list[int] = []
    got = enc.encode(texts, batch_size=8, progress=seen.append)

    means = np.array([np.mean([len(w) for w in t.split()]) for t in texts], dtype=np.float32)
    assert np.allclose(got, np.stack([means, 2 * means + 1], axis=1), atol=1e-5)
    # The session saw batches from the longest to the shortest, so padding stays small.
    widths = [w for _n, w in session.shapes]
    assert widths == sorted(widths, reverse=True)
    padded = sum(n * w for n, w in session.shapes)
    assert padded < 1.15 * lengths.sum()
    assert seen == [n for n, _w in session.shapes] and sum(seen) == len(texts)


def test_build_threads_are_the_cores_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert index_encoder.build_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 3, 5})
    assert index_encoder.build_threads() == 3


def test_progress_reaches_the_total_when_the_encoder_reports_none(seeded: Path) -> None:
    advanced: list[int] = []
    totals: list[int] = []

    def progress(total: int) -> Any:
        totals.append(total)
        return advanced.append

    report = build.rebuild(Paths(seeded), model="fake", progress=progress)
    assert totals == [report.chunks_embedded] and sum(advanced) == report.chunks_embedded


# -- the real packaged model ----------------------------------------------------------------------


LONG_NOTE = " ".join(
    f"Step {i}: the denoiser is trained on pairs drawn from one noisy image with dropout."
    for i in range(300)
)


@pytest.fixture(scope="module")
def st_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model(None).path), device="cpu")


def _stored(lib: Path) -> tuple[list[str], np.ndarray]:
    idx = Index.open(lib / "index")
    try:
        rows = idx.query("SELECT vid, text FROM chunks ORDER BY vid")
        vids = [vid for vid, _t in rows]
        return [t for _v, t in rows], np.asarray(vectors.reconstruct(idx.vectors, vids))
    finally:
        idx.close()


def _fill(lib: Path) -> Path:
    shutil.copy(SEED, lib / "notes" / "cvpr2020.md")
    # Chunks of very different lengths: short titles, full windows, a note split in several.
    (lib / "notes" / "long.md").write_text(
        f"# Long notes\n\n- One image denoising\n\n  {LONG_NOTE}\n", encoding="utf-8"
    )
    return lib


@pytest.mark.model
def test_first_build_embeds_with_the_export_and_matches_sentence_transformers(
    st_model: Any, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.encoders.encoder import STEncoder

    def torch_must_not_embed(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the first build embedded with sentence-transformers")

    monkeypatch.setattr(STEncoder, "encode", torch_must_not_embed)
    lib = _fill(library)
    logs: list[str] = []
    advanced: list[int] = []
    report = build.rebuild(Paths(lib), log=logs.append, progress=lambda _total: advanced.append)
    assert report.chunks_embedded == report.chunks > 40
    assert not [line for line in logs if "warning" in line], logs
    assert sum(advanced) == report.chunks and len(advanced) > 1  # one tick per batch

    texts, got = _stored(lib)
    assert len({len(t) for t in texts}) > 10  # the batches really mixed lengths
    want = st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    cos = (got * want).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999, cos.min()

    # The build loads the export with one intra-op thread per available core.
    spec = resolve_model(None)
    info = index_encoder.model_info(spec, None, logs.append)
    enc: Any = info.encoder(lib / "index", logs.append)
    threads = enc.inner._session.get_session_options().intra_op_num_threads
    assert threads == index_encoder.build_threads() == len(os.sched_getaffinity(0))


@pytest.mark.model
def test_failed_export_falls_back_to_sentence_transformers_with_one_warning(
    st_model: Any, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_export(*_a: Any, **_k: Any) -> Any:
        raise UnsupportedModel("cannot export this one\nsecond line")

    monkeypatch.setattr("search.encoders.query_encoder.export_onnx", broken_export)
    lib = _fill(library)
    logs: list[str] = []
    report = build.rebuild(Paths(lib), log=logs.append)
    warnings = [line for line in logs if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot export this one" in warnings[0], logs
    assert "second line" not in warnings[0]
    assert not any((lib / "index" / "encoders").glob("*/encoder.json"))

    texts, got = _stored(lib)
    assert len(texts) == report.chunks
    want = st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(got, want, atol=1e-5)
