"""Models that want query/document prompts (e5, bge) get them from their own configuration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from search.encoders.encoder import ModelSpec, default_model_path, prompts_of
from search.encoders.index_encoder import model_info
from search.encoders.query_encoder import OnnxQueryEncoder


def test_prompts_of_e5_and_bge_configs() -> None:
    assert prompts_of({"query": "query: ", "passage": "passage: "}) == ("query: ", "passage: ")
    bge = "Represent this sentence for searching relevant passages: "
    assert prompts_of({"query": bge}) == (bge, "")
    assert prompts_of({"query": None, "document": "doc: "}) == ("", "doc: ")
    assert prompts_of({}) == ("", "")


def e5_like(tmp_path: Path) -> ModelSpec:
    """The packaged model's configuration, with e5-style prompts added (no weights needed)."""
    src = default_model_path()
    dst = tmp_path / "e5-like"
    dst.mkdir()
    for name in ("tokenizer.json", "sentence_bert_config.json", "modules.json", "config.json"):
        shutil.copy(src / name, dst / name)
    (dst / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "passage": "passage: "}})
    )
    return ModelSpec("e5-like", dst)


def test_model_info_reads_prompts_and_they_change_the_settings(tmp_path: Path) -> None:
    spec = e5_like(tmp_path)
    info = model_info(spec, None, lambda s: None)
    assert (info.query_prompt, info.document_prompt) == ("query: ", "passage: ")
    settings = info.settings()  # what the manifest records and compares between rebuilds
    assert settings["query_prompt"] == "query: "
    assert settings["document_prompt"] == "passage: "
    (spec.path / "config_sentence_transformers.json").write_text("{}")
    plain = model_info(ModelSpec("e5-like", spec.path), None, lambda s: None)
    assert plain.settings() != settings


class Recorder:
    dim = 2
    max_seq_length = 16

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], progress: object = None) -> np.ndarray:
        self.seen.extend(texts)
        return np.ones((len(texts), 2), dtype=np.float32)


def test_fast_encoder_prepends_the_right_prompt(tmp_path: Path) -> None:
    inner = Recorder()
    enc = OnnxQueryEncoder(
        inner=inner,
        folder=tmp_path,
        dim=2,
        max_tokens=16,
        query_prompt="query: ",
        document_prompt="passage: ",
    )
    enc.encode(["what denoises?"], query=True)
    enc.encode(["Self2Self"])
    assert inner.seen == ["query: what denoises?", "passage: Self2Self"]


def test_fast_encoder_returns_unit_vectors(tmp_path: Path) -> None:
    # A model without a Normalize module: the index still holds unit vectors.
    enc = OnnxQueryEncoder(
        inner=Recorder(), folder=tmp_path, dim=2, max_tokens=16, query_prompt="", document_prompt=""
    )
    vecs = enc.encode(["a", "b"])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
