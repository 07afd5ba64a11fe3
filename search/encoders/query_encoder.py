"""The ONNX export of a model kept beside the index (index/encoders/<fingerprint>/): exporting
it, and loading it with the prompts and window the index was built with. Which encoder a
rebuild or a question gets is decided by index_encoder.open_encoder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.encoders.encoder import (
    Encoder,
    STEncoder,
    token_spans_with,
)
from search.encoders.onnx_encoder import (
    EncoderUnavailable,
    OnnxEncoder,
    copy_export,
    export_bytes,
    export_onnx,
    export_problem,
)
from search.errors import damaged
from search.storage import store

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
        try:
            vecs = np.asarray(self.inner.encode(texts, progress=progress), dtype=np.float32)
        except Exception as e:  # onnxruntime's own errors: the graph or its weights are bad
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise self._damaged(f"it fails: {first}") from None
        # The index holds unit vectors (inner product = cosine) whatever the model's own
        # modules say, as sentence-transformers' normalize_embeddings=True gives at build.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        if len(texts) and not (np.isfinite(norms).all() and (norms > 0).all()):
            # Damaged weights give NaN (or nothing); searching with it would answer nothing.
            raise self._damaged("it gives empty or non-numeric vectors")
        return vecs / np.maximum(norms, 1e-12)

    def _damaged(self, why: str) -> Exception:
        return damaged(
            f"the exported encoder in {self.folder.parent.name}/{self.folder.name}: {why}"
        )

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
    verify: bool | None = False,
    broken: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> OnnxQueryEncoder | None:
    """The exported encoder for `fingerprint`, or None if it is missing or broken (`broken`,
    if given, is told why).

    `verify`: check the CRC-32 of its files (None: only when they are at most
    store.VERIFY_ON_OPEN_BYTES, the budget an open of the index files has).
    `threads`: onnxruntime's intra-op threads (None: its default for questions)."""
    folder = encoder_dir(index_dir, fingerprint)
    if not (folder / "encoder.json").is_file():
        return None
    if verify is None:
        verify = export_bytes(folder) <= store.VERIFY_ON_OPEN_BYTES
    try:
        inner = OnnxEncoder.load(folder, optimize=optimize, verify=verify, threads=threads)
    except EncoderUnavailable as e:
        if broken is not None:
            broken(str(e))
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
    if not isinstance(encoder, STEncoder):
        return
    folder = encoder_dir(index_dir, fingerprint)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log("exporting the encoder to ONNX for fast queries…")
    export_onnx(encoder.model, folder)  # swapped in whole: queries never see half an export


# -- the user's cache: one export per model, shared by every library ---------------------------
# Exporting costs a torch load and a trace (~10 s on a quiet laptop, a minute on a busy one);
# the export depends only on the model, so every library's first build copies the cached one
# (~0.3 s for MiniLM's 90 MB, CRC-32s checked before and after) instead.


def user_cache() -> Path:
    """Where exports are cached: $XDG_CACHE_HOME/papers/encoders (default ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "papers" / ENCODERS


def restore_from_cache(index_dir: Path, fingerprint: str, log: Callable[[str], None]) -> bool:
    """Copy the cached export of `fingerprint` into the index, if the cache holds a whole one."""
    cached = user_cache() / fingerprint
    try:
        if not copy_export(cached, encoder_dir(index_dir, fingerprint)):
            return False
    except OSError as e:
        log(f"warning: could not copy the cached ONNX export ({e.strerror or e}); exporting")
        return False
    log(f"reusing the ONNX export of the model cached in {cached}")
    return True


def save_to_cache(index_dir: Path, fingerprint: str, log: Callable[[str], None]) -> None:
    """Keep a copy of the index's export in the user's cache, unless a whole one is there."""
    cached = user_cache() / fingerprint
    if export_problem(cached, verify=True) is None:
        return
    try:
        copy_export(encoder_dir(index_dir, fingerprint), cached)
    except OSError as e:  # a read-only or full home: the index's own copy is enough
        log(f"note: could not keep the ONNX export in {cached.parent} ({e.strerror or e})")
