"""The encoder a query uses: the ONNX export kept beside the index, else sentence-transformers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import Encoder, ModelSpec, token_spans_with

ENCODERS = "encoders"


def encoder_dir(index_dir: Path, fingerprint: str) -> Path:
    """Where the exported encoder of a model lives: keyed by the model's fingerprint, shared by
    every generation of the index."""
    return index_dir / ENCODERS / fingerprint


@dataclass
class OnnxQueryEncoder:
    """OnnxEncoder with the prompts and window the index was built with."""

    inner: Any = field(repr=False)
    folder: Path
    dim: int
    max_tokens: int
    query_prompt: str
    document_prompt: str
    _tokenizer: Any = field(default=None, repr=False)

    def encode(
        self,
        texts: list[str],
        *,
        query: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        prompt = self.query_prompt if query else self.document_prompt
        if prompt:
            texts = [prompt + t for t in texts]
        vecs = np.asarray(self.inner.encode(texts, progress=progress), dtype=np.float32)
        # The index holds unit vectors (inner product = cosine) whatever the model's own
        # modules say, as sentence-transformers' normalize_embeddings=True gives at build.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_spans_with(self._span_tokenizer(), text)

    def _span_tokenizer(self) -> Any:
        # Loaded only when text must be chunked (rebuild, `similar --text`): a question needs
        # none, and loading costs ~20 ms.
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer


def load_onnx(
    index_dir: Path,
    fingerprint: str,
    prompts: tuple[str, str] | None = None,
    *,
    optimize: bool = True,
    threads: int | None = None,
) -> OnnxQueryEncoder | None:
    """The exported encoder for `fingerprint`, or None if it is missing or broken.

    `threads`: onnxruntime's intra-op threads (None: its default for questions)."""
    folder = encoder_dir(index_dir, fingerprint)
    if not (folder / "encoder.json").is_file():
        return None
    from .onnx_encoder import EncoderUnavailable, OnnxEncoder

    try:
        inner = OnnxEncoder.load(folder, optimize=optimize, threads=threads)
    except EncoderUnavailable:
        return None
    query_prompt, document_prompt = prompts or ("", "")
    return OnnxQueryEncoder(
        inner=inner,
        folder=folder,
        dim=int(inner.dim),
        max_tokens=int(inner.max_seq_length or 512),
        query_prompt=query_prompt,
        document_prompt=document_prompt,
    )


def export_for_queries(
    index_dir: Path, fingerprint: str, encoder: Encoder, log: Callable[[str], None]
) -> None:
    """Export a sentence-transformers encoder to ONNX under index/encoders/<fingerprint>/."""
    from .encoder import STEncoder

    if not isinstance(encoder, STEncoder):
        return
    from .onnx_encoder import export_onnx

    folder = encoder_dir(index_dir, fingerprint)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log("exporting the encoder to ONNX for fast queries…")
    export_onnx(encoder.model, folder)  # swapped in whole: queries never see half an export


def for_query(index_dir: Path, manifest: dict[str, Any], warn: Callable[[str], None]) -> Encoder:
    """The encoder for questions against an index: fast ONNX, else a warned fallback."""
    prompts = (manifest.get("query_prompt", ""), manifest.get("document_prompt", ""))
    fast = load_onnx(index_dir, manifest["fingerprint"], prompts, optimize=False)
    if fast is not None:
        return fast
    from .encoder import _REGISTERED, registered_encoder

    spec = ModelSpec(manifest["model"], Path(manifest["model_path"]))
    if spec.name in _REGISTERED:
        return registered_encoder(ModelSpec(spec.name, spec.path, registered=True))
    warn(
        "warning: the fast (ONNX) encoder is missing or broken; using sentence-transformers "
        "(slow). `papers rebuild` re-creates it."
    )
    from .encoder import STEncoder

    return STEncoder.load(spec)
