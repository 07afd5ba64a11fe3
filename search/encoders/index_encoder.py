"""The encoder of an index, to build it or to ask it: `open_encoder` is the one way to get one.

A rebuild and a question want different things from the same model. A rebuild embeds many
chunks: it uses every core, checks the ONNX export's CRC-32s, and exports the model to ONNX
first if it is not yet (sentence-transformers when the export fails). A question embeds one
short text and must start fast: the export without graph optimisation, its CRC checked only
when small, and sentence-transformers (torch) only as a warned fallback. Both read the same
export under index/encoders/<fingerprint>/ (query_encoder.py), with the model's own prompts.

Also here, for the rebuild: the model's cheap side (`model_info`: tokenizer, prompts, the
settings that change the vectors) without torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.encoders import query_encoder  # called through the module: tests replace its functions
from search.encoders.encoder import (
    Encoder,
    ModelSpec,
    STEncoder,
    is_registered,
    prompts_of,
    read_model_config,
    registered_encoder,
    token_spans_with,
)
from search.encoders.onnx_encoder import CONFIG_FILE, export_problem
from search.errors import damaged
from search.storage.chunking import CHUNKING_VERSION

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: say nothing."""


def open_encoder(
    spec: ModelSpec,
    index_dir: Path,
    *,
    for_query: bool,
    fingerprint: str,
    prompts: tuple[str, str] = ("", ""),
    log: Log = _quiet,
) -> Encoder:
    """The encoder for `spec` and the index in `index_dir`, to embed questions (`for_query`)
    or a rebuild's chunks.

    `fingerprint` is the model's (the export is kept under it), `prompts` the (query,
    document) prompts the model's own config gives. `log` gets progress and warnings.

    Raises:
        IndexDamaged: (for a query) the export is there but damaged: falling back could hide
            it, and searching with a broken encoder answers nothing.
        ModelError: the model cannot be loaded.
    """
    if for_query:
        return _query_encoder(spec, index_dir, fingerprint, prompts, log)
    return _build_encoder(spec, index_dir, fingerprint, prompts, log)


def _query_encoder(
    spec: ModelSpec, index_dir: Path, fingerprint: str, prompts: tuple[str, str], log: Log
) -> Encoder:
    """The ONNX export as it loads fastest for one question; if there is none (a model that
    could not be exported), sentence-transformers with a warning."""
    problems: list[str] = []
    fast = query_encoder.load_onnx(
        index_dir, fingerprint, prompts, optimize=False, verify=None, broken=problems.append
    )
    if fast is not None:
        return fast
    if problems:
        raise damaged(f"the exported encoder: {problems[0]}")
    if spec.registered:
        return registered_encoder(spec)
    log(
        "warning: the fast (ONNX) encoder is missing or broken; using sentence-transformers "
        "(slow). `papers rebuild` re-creates it."
    )
    return STEncoder.load(spec)


def _build_encoder(
    spec: ModelSpec, index_dir: Path, fingerprint: str, prompts: tuple[str, str], log: Log
) -> Encoder:
    """Without an export yet (a first build), the model is exported to ONNX before anything
    is embedded and the chunks go through the export: faster than torch on the same cores. If
    the export fails, sentence-transformers embeds them (with a warning)."""
    enc = load_encoder(spec, fingerprint, index_dir, log, prompts)
    if export_encoder(index_dir, fingerprint, spec, enc, log):
        fast = query_encoder.load_onnx(index_dir, fingerprint, prompts, threads=build_threads())
        if fast is None:
            log("warning: the ONNX export does not load; embedding with torch (slower)")
        return fast or enc
    return enc


def indexed_model(manifest: dict[str, Any]) -> tuple[ModelSpec, str, tuple[str, str]]:
    """The model an index was built with, from its manifest: (spec, fingerprint, prompts),
    what `open_encoder` needs to embed questions against it."""
    name = str(manifest["model"])
    spec = ModelSpec(name, Path(manifest["model_path"]), registered=is_registered(name))
    prompts = (manifest.get("query_prompt", ""), manifest.get("document_prompt", ""))
    return spec, str(manifest["fingerprint"]), prompts


# -- the model's cheap side: tokenizer and settings, without torch ------------------------------


@dataclass
class ModelInfo:
    spec: ModelSpec
    fingerprint: str
    stat_key: str
    max_tokens: int
    query_prompt: str
    document_prompt: str
    spans: Callable[[str], list[tuple[int, int]]]
    loaded: Encoder | None = field(default=None, repr=False)

    def encoder(self, index_dir: Path, log: Log) -> Encoder:
        """The encoder for this rebuild (`open_encoder`), loaded once (a model load costs
        seconds)."""
        if self.loaded is None:
            self.loaded = open_encoder(
                self.spec,
                index_dir,
                for_query=False,
                fingerprint=self.fingerprint,
                prompts=(self.query_prompt, self.document_prompt),
                log=log,
            )
        return self.loaded

    def settings(self) -> dict[str, Any]:
        """Everything that changes the vectors: if any differs, every chunk is re-embedded."""
        return {
            "fingerprint": self.fingerprint,
            "chunking_version": CHUNKING_VERSION,
            "max_tokens": self.max_tokens,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "normalize": True,
        }


def model_info(spec: ModelSpec, previous: dict[str, Any] | None, log: Log) -> ModelInfo:
    if spec.registered:
        enc = load_encoder(spec, "", None, log)
        return ModelInfo(
            spec,
            spec.fingerprint(),
            spec.stat_key(),
            enc.max_tokens,
            enc.query_prompt,
            enc.document_prompt,
            enc.token_spans,
        )
    stat_key = spec.stat_key()
    if previous and previous.get("model_stat_key") == stat_key and previous.get("fingerprint"):
        fingerprint = previous["fingerprint"]
    else:
        fingerprint = spec.fingerprint()
    cfg = read_model_config(spec.path)
    max_tokens = int(cfg.get("max_seq_length") or 0)
    query_prompt, document_prompt = prompts_of(cfg.get("prompts") or {})
    tok_file = spec.path / "tokenizer.json"
    if max_tokens and tok_file.is_file():
        from tokenizers import Tokenizer  # a tokenizer file is read only when building

        tok = Tokenizer.from_file(str(tok_file))
        tok.no_truncation()
        tok.no_padding()
        return ModelInfo(
            spec,
            fingerprint,
            stat_key,
            max_tokens,
            query_prompt,
            document_prompt,
            lambda text: token_spans_with(tok, text),
        )
    # No standalone tokenizer file: ask sentence-transformers (slow, but correct).
    enc = load_encoder(spec, fingerprint, None, log)
    return ModelInfo(
        spec,
        fingerprint,
        stat_key,
        enc.max_tokens,
        enc.query_prompt,
        enc.document_prompt,
        enc.token_spans,
    )


def load_encoder(
    spec: ModelSpec,
    fingerprint: str,
    index_dir: Path | None,
    log: Log,
    prompts: tuple[str, str] | None = None,
) -> Encoder:
    """The encoder for building: the exported ONNX one when present (no torch), else
    sentence-transformers. `prompts` (query, document) are the model's own: the ONNX export
    must prepend the same ones sentence-transformers does."""
    if spec.registered:
        return registered_encoder(spec)
    if index_dir is not None:
        for _ in range(2):  # the index's export, else the user's cached one copied in
            onnx = query_encoder.load_onnx(
                index_dir, fingerprint, prompts, verify=True, threads=build_threads()
            )
            if onnx is not None:
                return onnx
            if not query_encoder.restore_from_cache(index_dir, fingerprint, log):
                break
    log(f"loading {spec.name} with sentence-transformers…")
    return STEncoder.load(spec)


def build_threads() -> int:
    """Every core this process may run on: a rebuild is a batch job (a question uses fewer)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def encoder_exported(
    index_dir: Path, info: ModelInfo, spec: ModelSpec, log: Log | None = None
) -> bool:
    """The ONNX export is there and whole: sizes and CRC-32s as recorded when it was written
    (a damaged one is exported again, as a damaged index is rebuilt)."""
    if spec.registered:
        return True
    folder = query_encoder.encoder_dir(index_dir, info.fingerprint)
    problem = export_problem(folder, verify=True)
    if problem is None:
        return True
    if query_encoder.restore_from_cache(index_dir, info.fingerprint, log or _quiet):
        return True
    if log is not None and (folder / CONFIG_FILE).exists():
        log(f"the exported encoder is damaged ({problem}); exporting it again")
    return False


def export_encoder(
    index_dir: Path, fingerprint: str, spec: ModelSpec, encoder: Encoder, log: Log
) -> bool:
    """Keep an ONNX copy of a sentence-transformers encoder beside the index, for rebuilds and
    queries without torch. True if it was exported now."""
    if spec.registered or not isinstance(encoder, STEncoder):
        return False
    try:
        query_encoder.export_for_queries(index_dir, fingerprint, encoder, log)
    except Exception as e:  # sentence-transformers embeds, and a query can fall back to it
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        log(f"warning: could not export the encoder to ONNX ({first}); using torch (slower)")
        return False
    query_encoder.save_to_cache(index_dir, fingerprint, log)
    return True
