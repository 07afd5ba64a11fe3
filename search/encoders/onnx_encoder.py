"""Export a sentence-transformers encoder to ONNX and encode queries without importing torch."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Imported inside the functions that need them, for start-up time: torch and onnx only to
# export (build time), onnxruntime (~150 ms) and tokenizers only when text is encoded, so that
# importing this module (as every query does) costs nothing.

__all__ = [
    "FORMAT_VERSION",
    "EncoderUnavailable",
    "OnnxEncoder",
    "UnsupportedModel",
    "add_int8",
    "export_onnx",
    "exported_ok",
]

# Bump when encoder.json or the graph contract changes; load() refuses other versions so an old
# export is rebuilt instead of silently encoding differently.
FORMAT_VERSION = 2

MODEL_FILE = "model.onnx"
# The fp32 weights live beside the graph (ONNX external data): onnxruntime maps that file
# instead of parsing ~90 MB of protobuf, which halves a cold query's session start.
WEIGHTS_FILE = "model.onnx.data"
QUANTIZED_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
OUTPUT_NAME = "token_embeddings"

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# Inputs we know how to build from a tokenizer encoding; anything else in a graph is refused.
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Legacy boolean pooling flags of sentence-transformers < 6, in its concatenation order.
_LEGACY_POOLING_FLAGS = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)


class EncoderUnavailable(Exception):
    """The exported encoder is missing, broken or cannot run; the caller falls back to torch."""


class UnsupportedModel(EncoderUnavailable):
    """The sentence-transformers model has a shape this module cannot reproduce in ONNX."""


# --------------------------------------------------------------------------------------------
# Export (index-build time: torch and sentence-transformers are already loaded here)
# --------------------------------------------------------------------------------------------


def export_onnx(model: SentenceTransformer, out_dir: Path, *, quantize: bool = False) -> Path:
    """Export `model` (Transformer + Pooling [+ Normalize]) into `out_dir`; returns `out_dir`.

    Writes model.onnx (token embeddings, dynamic batch and sequence axes), tokenizer.json,
    encoder.json and, with `quantize`, model.int8.onnx. The folder is built next to `out_dir`
    and swapped in with os.replace, so readers see either the old or the new complete encoder.
    Raises UnsupportedModel for module stacks that cannot be reproduced.
    """
    out_dir = Path(out_dir)
    spec = _inspect_model(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        transformer: Any = model[0]
        _export_tokenizer(transformer.tokenizer, spec, tmp / TOKENIZER_FILE)
        sample = ["a", "an example sentence that is longer than the first one, with padding"]
        features = transformer.tokenizer(
            sample, padding=True, truncation=True, max_length=spec["max_seq_length"]
        )
        feed_names = [name for name in spec["model_input_names"] if name in features]
        if "input_ids" not in feed_names or "attention_mask" not in feed_names:
            raise UnsupportedModel(
                f"tokenizer gives {sorted(features)}, need input_ids and attention_mask"
            )
        expected = _export_graph(transformer, features, feed_names, tmp / MODEL_FILE)

        # Check the graph we just wrote against torch on a padded batch before publishing it.
        session = _make_session(tmp / MODEL_FILE, threads=None)
        graph_inputs = [i.name for i in session.get_inputs()]
        if any(name not in KNOWN_INPUTS or name not in features for name in graph_inputs):
            raise UnsupportedModel(f"graph inputs {graph_inputs}: not all are tokenizer outputs")
        feeds = {
            name: np.asarray(features[name], dtype=np.int64)
            for name in graph_inputs
            if name in features
        }
        got = session.run([OUTPUT_NAME], feeds)[0]
        mask = np.asarray(features["attention_mask"], dtype=bool)
        scale = max(1.0, float(np.abs(expected[mask]).max()))
        err = float(np.abs(got[mask] - expected[mask]).max()) / scale
        if not np.isfinite(err) or err > 1e-3:
            raise UnsupportedModel(f"exported graph differs from torch by {err:.3g}")
        del session

        files = [MODEL_FILE, WEIGHTS_FILE, TOKENIZER_FILE]
        if quantize:
            _quantize(tmp / MODEL_FILE, tmp / QUANTIZED_FILE)
            files.append(QUANTIZED_FILE)
        _externalise(tmp / MODEL_FILE, WEIGHTS_FILE)

        config = {
            "format_version": FORMAT_VERSION,
            "max_seq_length": spec["max_seq_length"],
            "pooling_mode": spec["pooling_mode"],
            "normalize": spec["normalize"],
            "do_lower_case": spec["do_lower_case"],
            "dim": spec["dim"],
            "hidden_size": int(expected.shape[-1]),
            "input_names": graph_inputs,
            "output_name": OUTPUT_NAME,
            "pad_token_id": spec["pad_token_id"],
            "pad_token_type_id": spec["pad_token_type_id"],
            "padding_side": spec["padding_side"],
            "truncation_side": spec["truncation_side"],
            "quantized": quantize,
            "source": spec["source"],
            "files": {name: _file_record(tmp / name) for name in files},
        }
        _write_json(tmp / CONFIG_FILE, config)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _inspect_model(model: SentenceTransformer) -> dict[str, Any]:
    """Check the module stack and collect what query-time encoding must reproduce."""
    modules: list[Any] = list(model)
    names = [type(m).__name__ for m in modules]
    ok_stack = (
        len(modules) in (2, 3)
        and names[0] == "Transformer"
        and names[1] == "Pooling"
        and (len(modules) == 2 or names[2] == "Normalize")
    )
    if not ok_stack:
        raise UnsupportedModel(
            f"only Transformer + Pooling [+ Normalize] models can be exported, got {names}"
        )
    transformer, pooling = modules[0], modules[1]

    if getattr(model, "default_prompt_name", None):
        # sentence-transformers would prepend the prompt to every text; we encode raw text.
        raise UnsupportedModel(f"model has a default prompt {model.default_prompt_name!r}")
    modality = getattr(transformer, "modality_config", None)
    if modality is not None:
        text = modality.get("text") if isinstance(modality, dict) else None
        if (
            not text
            or text.get("method") != "forward"
            or text.get("method_output_name") not in ("last_hidden_state", ["last_hidden_state"])
            or getattr(transformer, "module_output_name", OUTPUT_NAME) != OUTPUT_NAME
        ):
            raise UnsupportedModel(f"transformer is not a plain text encoder: {modality}")
    if getattr(transformer, "query_expansion", None):
        raise UnsupportedModel("query expansion is not supported")

    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "backend_tokenizer"):
        raise UnsupportedModel("the model needs a fast (tokenizers) tokenizer")
    if tokenizer.pad_token_id is None:
        raise UnsupportedModel("the tokenizer has no padding token")

    modes = _pooling_modes(pooling)
    max_len = transformer.max_seq_length
    # transformers uses a huge sentinel for "no limit"; the graph then sees untruncated text.
    max_seq_length = int(max_len) if max_len is not None and max_len < 1_000_000 else None

    return {
        "pooling_mode": modes,
        "normalize": len(modules) == 3,
        "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
        "max_seq_length": max_seq_length,
        "dim": int(pooling.get_embedding_dimension())
        if hasattr(pooling, "get_embedding_dimension")
        else int(pooling.get_sentence_embedding_dimension()),
        "model_input_names": list(tokenizer.model_input_names),
        "pad_token_id": int(tokenizer.pad_token_id),
        "pad_token_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "padding_side": str(tokenizer.padding_side),
        "truncation_side": str(tokenizer.truncation_side),
        "source": str(getattr(transformer.auto_model.config, "_name_or_path", "")),
    }


def _pooling_modes(pooling: Any) -> list[str]:
    mode = getattr(pooling, "pooling_mode", None)
    if mode is not None:
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [name for flag, name in _LEGACY_POOLING_FLAGS if getattr(pooling, flag, False)]
    bad = [m for m in modes if m not in POOLING_MODES]
    if not modes or bad:
        raise UnsupportedModel(f"unsupported pooling mode {modes}")
    return modes


def _export_tokenizer(hf_tokenizer: Any, spec: dict[str, Any], path: Path) -> None:
    from tokenizers import Tokenizer

    # A copy of the live backend: it carries sentence-transformers' own changes (lowercasing),
    # but its stored truncation/padding (often fixed at 128) is not what encode() uses.
    tok = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    if spec["do_lower_case"] and not _lowercases(tok):
        # Older sentence-transformers lowercased in Python instead of in the tokenizer: bake it
        # into the saved tokenizer so query time needs no flag.
        from tokenizers.normalizers import Lowercase, Sequence

        parts = [Lowercase()] if tok.normalizer is None else [Lowercase(), tok.normalizer]
        tok.normalizer = Sequence(parts)
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(path))

    # Query time tokenizes with this file alone: prove it gives the ids sentence-transformers
    # would, truncation included, before publishing it.
    max_len = spec["max_seq_length"]
    if max_len is not None:
        tok.enable_truncation(max_length=max_len, direction=spec["truncation_side"])
    probes = ["", "Hello World!", "Café NAÏVE résumé 🚀 日本語 ﬁ", "long words " * 600]
    expected = hf_tokenizer(probes, truncation=max_len is not None, max_length=max_len)
    got = [enc.ids for enc in tok.encode_batch(probes)]
    if got != [list(ids) for ids in expected["input_ids"]]:
        raise UnsupportedModel("the saved tokenizer does not reproduce the model's token ids")


def _lowercases(tok: Any) -> bool:
    return tok.normalizer is not None and tok.normalizer.normalize_str("ABC") == "abc"


def _export_graph(transformer: Any, features: Any, feed_names: list[str], path: Path) -> np.ndarray:
    """Export the transformer's token embeddings; returns torch's output on `features`."""
    import torch

    hf_model = transformer.auto_model
    device = next(hf_model.parameters()).device

    class _TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(feed_names, args, strict=True))
            return self.inner(**kwargs, return_dict=True).last_hidden_state

    wrapper = _TokenEmbeddings(hf_model)
    args = tuple(
        torch.tensor(features[name], dtype=torch.long, device=device) for name in feed_names
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in [*feed_names, OUTPUT_NAME]}
    was_training = hf_model.training
    hf_model.eval()
    # Plain matmul-softmax attention: the SDPA graph adds NaN guards over every (batch, head,
    # query, key) score, and onnxruntime ran the eager graph 13 % faster per core-second
    # (docs/benchmarks.md). Restored after, as is every other setting touched here.
    attention = getattr(hf_model.config, "_attn_implementation", None)
    _set_attention(hf_model, "eager")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer flags Python-level shape checks in transformers that are constant for
            # encoders; none is actionable for the caller, and tests run with warnings as errors.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", message=".*aten::index operator")
            warnings.filterwarnings("ignore", message="The feature will be removed")
            expected = wrapper(*args).float().cpu().numpy()
            # dynamo=False: the TorchScript exporter works offline with no onnxscript dependency.
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=feed_names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        hf_model.train(was_training)
        if attention is not None:
            _set_attention(hf_model, attention)
    return np.asarray(expected, dtype=np.float32)


def _set_attention(hf_model: Any, implementation: str) -> None:
    try:
        hf_model.set_attn_implementation(implementation)
    except Exception:  # an old transformers or a model with one implementation: keep its own
        pass


def _externalise(path: Path, weights: str) -> None:
    """Rewrite the graph at `path` with its weights in the file `weights` beside it."""
    import onnx

    model = onnx.load(str(path))
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights,
        size_threshold=1024,
    )


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnx import numpy_helper

    _onnxruntime()  # telemetry off before onnxruntime first loads
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t.dims:
            shapes[node.output[0]] = tuple(numpy_helper.to_array(node.attribute[0].t).shape)
    # Only MatMuls against a weight matrix, and not the down-projections (in > out, i.e. the
    # feed-forward output fed by GELU): their activation outliers cost the most accuracy with
    # per-tensor int8 activations (MiniLM: min cosine 0.972 with them, 0.987 without).
    nodes = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and len(shapes.get(node.input[1], ())) == 2
        and shapes[node.input[1]][0] <= shapes[node.input[1]][1]
    ]
    quiet = _DropMessage("Please consider to run pre-processing")
    root = logging.getLogger()
    root.addFilter(quiet)  # a hint for static quantisation that does not apply here
    try:
        quantize_dynamic(
            src,
            dst,
            nodes_to_quantize=nodes,
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(quiet)


def add_int8(folder: Path) -> Path:
    """Give an export its int8 graph if it has none yet (quantised from its fp32 graph, a few
    seconds); returns the folder. The graph is written beside the others and encoder.json is
    replaced whole after it, so a reader sees either no int8 graph or a complete one.
    Raises EncoderUnavailable when the export is not whole or cannot be quantised."""
    folder = Path(folder)
    config = _read_config(folder)
    if QUANTIZED_FILE in config["files"]:
        _check_file(folder, QUANTIZED_FILE, config)
        return folder
    for name in _needed_files(MODEL_FILE):
        _check_file(folder, name, config)
    fd, name = tempfile.mkstemp(prefix=f".{QUANTIZED_FILE}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            _quantize(folder / MODEL_FILE, tmp)
        except ImportError as exc:
            raise EncoderUnavailable(f"int8 needs onnx and onnxruntime: {exc}") from exc
        except Exception as exc:  # onnx's and onnxruntime's own errors
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EncoderUnavailable(f"{folder / MODEL_FILE} cannot be quantised: {first}") from exc
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the encoder is shared like the index
        os.replace(tmp, folder / QUANTIZED_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    config["files"][QUANTIZED_FILE] = _file_record(folder / QUANTIZED_FILE)
    config["quantized"] = True
    fd, name = tempfile.mkstemp(prefix=f".{CONFIG_FILE}.", suffix=".tmp", dir=folder)
    os.close(fd)
    _write_json(Path(name), config)
    os.chmod(name, 0o644)
    os.replace(name, folder / CONFIG_FILE)
    return folder


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _file_record(path: Path) -> dict[str, Any]:
    # crc32 is what is verified (as for the index files: ~50 ms for the 90 MB of MiniLM);
    # sha256 names the content.
    digest = hashlib.sha256()
    crc = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            crc = zlib.crc32(block, crc)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest(), "crc32": crc}


def _file_crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def copy_export(src: Path, out_dir: Path) -> bool:
    """Copy a whole export (checked with its CRC-32s) from `src` to `out_dir`, swapped in as
    an export is. False, copying nothing, if `src` is not whole or the copy fails its check."""
    if export_problem(src, verify=True) is not None:
        return False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for child in src.iterdir():
            if child.is_file() and not child.name.startswith("."):
                shutil.copyfile(child, tmp / child.name)
        if export_problem(tmp, verify=True) is not None:  # changed while it was copied
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _swap_in(tmp: Path, out_dir: Path) -> None:
    for child in tmp.iterdir():
        # Durable before the rename, or a power cut could publish empty files.
        with child.open("rb") as fh:
            os.fsync(fh.fileno())
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the encoder is shared like the index
    if out_dir.exists():
        # os.replace cannot replace a non-empty directory: move the old one aside first.
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


# --------------------------------------------------------------------------------------------
# Query time: numpy + tokenizers + onnxruntime only
# --------------------------------------------------------------------------------------------


def _default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    # Beyond ~4 threads a 6-layer encoder on short queries gains nothing and contends with
    # whatever else runs.
    return max(1, min(cores, 4))


def _onnxruntime() -> Any:
    """onnxruntime, imported with its telemetry off.

    onnxruntime records telemetry (OS, Python path, CPU, a device id) in
    ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ as soon as it is imported, unless
    ORT_DISABLE_TELEMETRY is set first; disable_telemetry_events() (where the build has it)
    also stops events from sessions. papers writes nothing outside the library.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort  # lazy: heavy, and only queries and exports need it

    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:
        disable()
    return ort


def _make_session(path: Path, threads: int | None, optimize: bool = True) -> Any:
    ort = _onnxruntime()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or _default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Graph fusion pays off over thousands of texts (a rebuild) but costs more to set up than
    # it saves on one question.
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    opts.log_severity_level = 3  # errors reach us as exceptions; keep stderr clean
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def read_config(folder: Path) -> dict[str, Any]:
    """An export's encoder.json (window, pooling, padding, graph inputs); raises
    EncoderUnavailable when it is missing or of another format version."""
    return _read_config(Path(folder))


def load_tokenizer(folder: Path, config: dict[str, Any] | None = None) -> Any:
    """The export's tokenizer (`tokenizers.Tokenizer`), cutting at the model's window as
    encoding does and not padding; raises EncoderUnavailable when it cannot be read."""
    folder = Path(folder)
    config = config if config is not None else _read_config(folder)
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EncoderUnavailable(f"the tokenizers package is not installed: {exc}") from exc
    try:
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except Exception as exc:
        raise EncoderUnavailable(f"{folder / TOKENIZER_FILE} is unreadable: {exc}") from exc
    tokenizer.no_padding()  # encoding pads per batch itself
    if config["max_seq_length"] is not None:
        tokenizer.enable_truncation(
            max_length=int(config["max_seq_length"]),
            strategy="longest_first",
            direction=config.get("truncation_side", "right"),
        )
    else:
        tokenizer.no_truncation()
    return tokenizer


def tokenize_with(tokenizer: Any, texts: Sequence[str]) -> list[TokenRow]:
    """Token ids and type ids of each text (a `load_tokenizer` tokenizer), as int64 arrays.

    Only the ids are kept (a tokenizers Encoding also holds token strings and offsets: ~20 kB
    for a full window), so thousands of texts can be handed over at once."""
    if isinstance(texts, str):
        raise TypeError("tokenize() takes a list of strings, not a single string")
    tokens: list[TokenRow] = []
    for start in range(0, len(texts), 256):
        for enc in tokenizer.encode_batch(list(texts[start : start + 256])):
            tokens.append((np.asarray(enc.ids, np.int64), np.asarray(enc.type_ids, np.int64)))
    return tokens


class OnnxEncoder:
    """Encodes texts like the exported sentence-transformers model, with onnxruntime."""

    def __init__(self, session: Any, tokenizer: Any, config: dict[str, Any]) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._config = config
        self._inputs = [i.name for i in session.get_inputs()]
        self._modes: list[str] = list(config["pooling_mode"])
        self._normalize = bool(config["normalize"])
        self._dim = int(config["dim"])
        self._pad_id = int(config["pad_token_id"])
        self._pad_type_id = int(config.get("pad_token_type_id", 0))
        self._left_pad = config.get("padding_side", "right") == "left"

    @classmethod
    def load(
        cls,
        dir: Path,
        *,
        quantized: bool = False,
        threads: int | None = None,
        optimize: bool = True,
        verify: bool = False,
    ) -> OnnxEncoder:
        """Load an encoder written by export_onnx; raises EncoderUnavailable if unusable.

        `optimize=False` starts faster and suits encoding a few texts (a question).
        `verify`: check each file's CRC-32, not only its size.
        """
        folder = Path(dir)
        config = _read_config(folder)
        model_file = QUANTIZED_FILE if quantized else MODEL_FILE
        for name in _needed_files(model_file):
            _check_file(folder, name, config, verify)

        tokenizer = load_tokenizer(folder, config)

        try:
            session = _make_session(folder / model_file, threads, optimize)
        except ImportError as exc:
            raise EncoderUnavailable(f"onnxruntime is not installed: {exc}") from exc
        except Exception as exc:
            raise EncoderUnavailable(f"{folder / model_file} cannot be loaded: {exc}") from exc

        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        unknown = [name for name in inputs if name not in KNOWN_INPUTS]
        if unknown or "input_ids" not in inputs or OUTPUT_NAME not in outputs:
            raise EncoderUnavailable(
                f"{folder / model_file} has inputs {inputs} and outputs {outputs}, "
                f"expected inputs among {list(KNOWN_INPUTS)} and output {OUTPUT_NAME!r}"
            )
        return cls(session, tokenizer, config)

    @property
    def dim(self) -> int:
        """Length of each embedding."""
        return self._dim

    @property
    def max_seq_length(self) -> int | None:
        """Tokens per text (special tokens included) beyond which text is cut off."""
        value = self._config["max_seq_length"]
        return None if value is None else int(value)

    @property
    def normalize(self) -> bool:
        """Whether embeddings are L2-normalised (cosine similarity is then a dot product)."""
        return self._normalize

    @property
    def input_names(self) -> list[str]:
        """The graph's inputs, among KNOWN_INPUTS (another runtime feeds the same ones)."""
        return list(self._inputs)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed `texts` as float32 rows of shape (len(texts), dim), in input order.

        `progress(n)` is called after each batch with the number of texts it embedded.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        return self.encode_tokens(self.tokenize(texts), batch_size, progress)

    def tokenize(self, texts: Sequence[str]) -> list[TokenRow]:
        """Token ids and type ids of each text, cut at the model's window: the CPU half of
        encoding, which a caller may run ahead of `encode_tokens` (in a thread or elsewhere)."""
        return tokenize_with(self._tokenizer, texts)

    def encode_tokens(
        self,
        tokens: Sequence[TokenRow],
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed token rows (from `tokenize`) as float32 rows, in input order."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.zeros((len(tokens), self._dim), dtype=np.float32)
        # Batching similar lengths together wastes less compute on padding; results do not
        # depend on the padding, so the order is restored afterwards.
        for idx in length_batches([len(ids) for ids, _types in tokens], batch_size):
            out[idx] = self._encode_batch([tokens[i] for i in idx])
            if progress is not None:
                progress(len(idx))
        return out

    def _encode_batch(self, rows: list[TokenRow]) -> np.ndarray:
        ids, types, mask = pad_rows(rows, self._pad_id, self._pad_type_id, self._left_pad)
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {name: arrays[name] for name in self._inputs}
        tokens = self._session.run([OUTPUT_NAME], feeds)[0].astype(np.float32, copy=False)
        pooled = np.concatenate([_pool(tokens, mask, mode) for mode in self._modes], axis=1)
        if self._normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)  # torch F.normalize's eps
        return pooled


TokenRow = tuple[np.ndarray, np.ndarray]
"""One text's token ids and token type ids (int64), special tokens included, unpadded."""


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of rows grouped into batches of at most `batch_size`, longest rows first, so
    that each batch pads to nearly its own rows' length."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def pad_rows(
    rows: Sequence[TokenRow], pad_id: int, pad_type_id: int = 0, left: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input ids, token type ids, attention mask), int64 of shape (rows, longest row), padded
    on the tokenizer's side."""
    n = len(rows)
    width = max(1, max((len(row_ids) for row_ids, _types in rows), default=1))
    ids = np.full((n, width), pad_id, dtype=np.int64)
    types = np.full((n, width), pad_type_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    for row, (row_ids, row_types) in enumerate(rows):
        length = len(row_ids)
        cols = slice(width - length, width) if left else slice(0, length)
        ids[row, cols] = row_ids
        types[row, cols] = row_types
        mask[row, cols] = 1
    return ids, types, mask


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """One sentence-transformers pooling mode over (batch, seq, hidden) with a 0/1 mask."""
    batch, seq, _ = tokens.shape
    rows = np.arange(batch)
    weights = mask.astype(np.float32)
    if mode == "cls":
        # First attended position, so left padding works too (as in sentence-transformers).
        return tokens[rows, mask.argmax(axis=1)]
    if mode == "lasttoken":
        last = seq - 1 - mask[:, ::-1].argmax(axis=1)
        return tokens[rows, last] * weights[rows, last][:, None]
    if mode == "max":
        return np.where(mask[:, :, None] > 0, tokens, -np.inf).max(axis=1).astype(np.float32)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        summed = np.einsum("bsh,bs->bh", tokens, weights)
        count = np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
        return summed / (count if mode == "mean" else np.sqrt(count))
    if mode == "weightedmean":
        # Position weights 1, 2, ... counted from the first real token.
        first = mask.argmax(axis=1)
        positions = np.arange(seq, dtype=np.float32)[None, :] - first[:, None] + 1
        w = positions * weights
        summed = np.einsum("bsh,bs->bh", tokens, w)
        return summed / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
    raise EncoderUnavailable(f"unknown pooling mode {mode!r}")


def _needed_files(model_file: str) -> tuple[str, ...]:
    weights = (WEIGHTS_FILE,) if model_file == MODEL_FILE else ()
    return (model_file, *weights, TOKENIZER_FILE)


def exported_ok(folder: Path, verify: bool = False) -> bool:
    """True if `folder` holds a complete export in this program's format (cheap: no session;
    `verify` also checks each file's CRC-32)."""
    return export_problem(folder, verify) is None


def export_problem(folder: Path, verify: bool = False) -> str | None:
    """Why `folder` does not hold a whole export in this program's format, or None if it does."""
    try:
        config = _read_config(Path(folder))
        for name in _needed_files(MODEL_FILE):
            _check_file(Path(folder), name, config, verify)
    except EncoderUnavailable as exc:
        return str(exc)
    return None


def export_bytes(folder: Path, quantized: bool = False) -> int:
    """Total size of the files a load reads (0 if unknown): decides whether an open verifies."""
    try:
        config = _read_config(Path(folder))
        records = config["files"]
        return sum(
            int(records[name]["size"])
            for name in _needed_files(QUANTIZED_FILE if quantized else MODEL_FILE)
        )
    except (EncoderUnavailable, KeyError, TypeError, ValueError):
        return 0


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EncoderUnavailable(f"no ONNX encoder at {folder} ({CONFIG_FILE} missing)") from exc
    except (OSError, ValueError) as exc:
        raise EncoderUnavailable(f"{path} is unreadable: {exc}") from exc
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        found = config.get("format_version") if isinstance(config, dict) else None
        raise EncoderUnavailable(
            f"{path} has format version {found!r}, this program reads {FORMAT_VERSION}"
        )
    required = ("max_seq_length", "pooling_mode", "normalize", "do_lower_case", "dim")
    missing = [key for key in (*required, "pad_token_id", "files") if key not in config]
    if missing:
        raise EncoderUnavailable(f"{path} lacks {missing}")
    modes = config["pooling_mode"]
    if not isinstance(modes, list) or not modes or any(m not in POOLING_MODES for m in modes):
        raise EncoderUnavailable(f"{path} has an unknown pooling mode {modes!r}")
    return config


def _check_file(folder: Path, name: str, config: dict[str, Any], verify: bool = False) -> None:
    path = folder / name
    record = config["files"].get(name)
    if record is None:
        raise EncoderUnavailable(f"{path} was not exported (re-export with quantize=True?)")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EncoderUnavailable(f"{path} is missing: {exc}") from exc
    # Size on every load; the CRC-32 when verifying (every rebuild, and an open when the files
    # are small): reading ~90 MB on every question would cost more than the question itself.
    if size != record["size"]:
        raise EncoderUnavailable(f"{path} is {size} bytes, expected {record['size']} (damaged?)")
    if not verify:
        return
    try:
        if "crc32" in record:
            same = _file_crc32(path) == int(record["crc32"])
        else:  # exported before the CRC was recorded
            same = _file_sha256(path) == record.get("sha256")
    except OSError as exc:
        raise EncoderUnavailable(f"{path} cannot be read: {exc.strerror or exc}") from exc
    if not same:
        raise EncoderUnavailable(f"{path} does not match its checksum (damaged)")
