"""Embedding the catalog at the hardware's pace: tokenize, run the model, write, as stages.

Why stages (issue 23, measured on an H200 with 16 cores): a GPU actor that tokenized its own
texts in one thread embedded 2,218 abstracts/s while the model alone, in fp16 on pre-tokenized
length-sorted batches, ran 22,807/s; tokenizing on all 16 cores gave 15,103/s. So text becomes
token ids in a stage of its own (`ExportTokenizer`, many CPUs under Ray, a thread ahead of the
model here) and the model stage only runs the model on length-sorted batches:

- `OnnxModel`: the ONNX export on this machine's cores, fp32 or int8 (`onnx_encoder.add_int8`);
- `TorchModel`: the sentence-transformers model run by torch on token ids, fp16 or bf16 on a
  GPU (fp32 too; on the CPU only to test it);
- `text_stages`: an in-process encoder (the tests' fake) that takes text whole.

Every stage writes unit float32 rows; `embed_stages` stores them as float16 shards, each
written whole (a killed run keeps every finished shard), with the precision that made them.
A catalog's vectors come from one precision: `resolve_precision` continues in the precision
the shards were made in, and refuses another one unless asked to embed everything again.
Before a long run, `measure_rate` times the model on the user's own texts for an estimate.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.catalog.catalog import (
    SHARD_SIZE,
    Catalog,
    CatalogError,
    Embeddings,
    write_shard,
)
from search.encoders.index_encoder import build_threads
from search.encoders.onnx_encoder import (
    EncoderUnavailable,
    OnnxEncoder,
    TokenRow,
    add_int8,
    length_batches,
    load_tokenizer,
    pad_rows,
    read_config,
    tokenize_with,
)

Log = Callable[[str], None]

PRECISIONS = ("fp32", "int8", "fp16", "bf16")
ON_CPU = ("fp32", "int8")  # what the ONNX export runs in on CPUs
ON_GPU = ("fp16", "bf16", "fp32")  # what torch runs in on a GPU
# fp32 by default on CPUs; int8 (--int8) gives 1.5x fp32's abstracts per CPU second but cost
# 0.0021 nDCG@10 on SciFact train as the catalog uses it (one vector per abstract, fp32
# questions: 0.6602 -> 0.6581), just past the 0.002 a default may cost (benchmarks.md).
CPU_DEFAULT = "fp32"
GPU_DEFAULT = "fp16"

# Rows per onnxruntime call on CPUs, measured (bench/catalog_embed.py --batches 16,32,64, three
# runs, full-window abstracts): 16 gave as many or more fp32 papers per CPU second than 32 and
# 64 in each run (10.1-10.8 against 9.0-10.5), int8 was within noise; and a small batch pads
# less when lengths are mixed.
CPU_BATCH = 16
# Tokens per torch call on a GPU: 2,048 full-window (256-token) abstracts, the batch the
# issue measured at 22,807 abstracts/s in fp16 on an H200. Halved on running out of memory.
GPU_TOKENS = 2048 * 256
# Papers the estimate before a long run is measured on (after 8 to warm the runtime up):
# a few seconds on two cores, against hours for the run it estimates.
ESTIMATE_SAMPLE = 64
# A run this long (papers) gets a measured time estimate before it starts.
ESTIMATE_MIN = 2 * SHARD_SIZE


# --------------------------------------------------------------------------------------------
# The stages
# --------------------------------------------------------------------------------------------


class ExportTokenizer:
    """Texts to token rows with the export's tokenizer (the one the ONNX graph was checked
    against), the model's document prompt first: the CPU stage."""

    def __init__(self, folder: Path, prompt: str = "") -> None:
        self.config = read_config(folder)
        self.tokenizer = load_tokenizer(folder, self.config)
        self.prompt = prompt

    def __call__(self, texts: Sequence[str]) -> list[TokenRow]:
        prompt = self.prompt
        return tokenize_with(self.tokenizer, [prompt + t for t in texts] if prompt else texts)


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (the catalog holds unit vectors: inner product = cosine);
    a non-numeric or empty vector means a damaged model, never something to store."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    if len(vecs) and not (np.isfinite(norms).all() and (norms > 0).all()):
        raise CatalogError("the encoder gives empty or non-numeric vectors: is its model damaged?")
    return vecs / np.maximum(norms, 1e-12)


class OnnxModel:
    """The ONNX export on token rows, on this machine's cores: fp32, or int8 (the graph is
    quantised once, beside the fp32 one, the first time int8 is asked for)."""

    def __init__(
        self, folder: Path, precision: str, threads: int | None = None, batch: int = CPU_BATCH
    ) -> None:
        if precision not in ON_CPU:
            raise CatalogError(f"the ONNX export runs in {' or '.join(ON_CPU)}, not {precision}")
        self.threads = threads or build_threads()
        self.batch = batch
        try:
            if precision == "int8":
                add_int8(folder)
            self.encoder = OnnxEncoder.load(
                folder, quantized=precision == "int8", threads=self.threads, verify=True
            )
        except EncoderUnavailable as e:
            raise CatalogError(f"the exported encoder cannot run in {precision}: {e}") from None

    def __call__(self, rows: Sequence[TokenRow]) -> np.ndarray:
        return unit_rows(self.encoder.encode_tokens(rows, self.batch))


class TorchModel:
    """The sentence-transformers model run by torch on token rows (no tokenizer of its own):
    every module of the model (transformer, pooling, normalisation) in `precision` on
    `device`, on length-sorted batches of up to `tokens` tokens. Pooling sums in fp32 even
    for fp16 inputs (sentence-transformers' own rule), so half precision moves vectors by
    about 1e-4 in cosine."""

    def __init__(
        self,
        model_path: str | Path,
        config: dict[str, Any],
        precision: str = GPU_DEFAULT,
        device: str = "cuda",
        tokens: int = GPU_TOKENS,
    ) -> None:
        if precision not in ON_GPU:
            raise CatalogError(f"torch runs the model in {' or '.join(ON_GPU)}, not {precision}")
        import torch  # lazy: GPU workers only
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one progress line: ours

        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
        self.torch = torch
        self.model = SentenceTransformer(str(model_path), device=device).to(dtype[precision])
        self.model.eval()
        self.device = device
        self.tokens = tokens
        self.inputs = list(config.get("input_names") or ["input_ids", "attention_mask"])
        self.pad = (
            int(config["pad_token_id"]),
            int(config.get("pad_token_type_id", 0)),
            config.get("padding_side", "right") == "left",
        )

    def __call__(self, rows: Sequence[TokenRow]) -> np.ndarray:
        if not rows:
            return np.zeros((0, 0), np.float32)
        lengths = [len(ids) for ids, _types in rows]
        out: np.ndarray | None = None
        batch = max(1, self.tokens // max(lengths))
        pending = length_batches(lengths, batch)
        while pending:
            idx = pending.pop(0)
            try:
                vecs = self._run([rows[i] for i in idx])
            except self.torch.cuda.OutOfMemoryError:
                if len(idx) == 1:
                    raise
                self.torch.cuda.empty_cache()
                half = len(idx) // 2
                pending[:0] = [idx[:half], idx[half:]]
                continue
            if out is None:
                out = np.zeros((len(rows), vecs.shape[1]), np.float32)
            out[idx] = vecs
        assert out is not None
        return unit_rows(out)

    def _run(self, rows: list[TokenRow]) -> np.ndarray:
        torch = self.torch
        ids, types, mask = pad_rows(rows, *self.pad)
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        features = {
            name: torch.from_numpy(arrays[name]).to(self.device)
            for name in self.inputs
            if name in arrays
        }
        with torch.inference_mode():
            emb = self.model(features)["sentence_embedding"]
        return np.asarray(emb.float().cpu().numpy(), dtype=np.float32)


@dataclass
class Stages:
    """A runtime split in two: `tokenize` (texts to what `model` takes) and `model` (that to
    unit float32 rows); `precision` is recorded with every shard, `where` is said to the user."""

    tokenize: Callable[[list[str]], Any]
    model: Callable[[Any], np.ndarray]
    precision: str
    where: str


def text_stages(encode: Callable[[list[str]], np.ndarray], precision: str = "fp32") -> Stages:
    """An in-process encoder (no separate tokenizer): the texts go to it whole."""
    return Stages(lambda texts: texts, encode, precision, "in-process encoder")


def onnx_stages(folder: Path, prompt: str, precision: str, threads: int | None = None) -> Stages:
    model = OnnxModel(folder, precision, threads)
    cores = f"{model.threads} core" + ("s" if model.threads != 1 else "")
    return Stages(ExportTokenizer(folder, prompt), model, precision, f"ONNX {precision} on {cores}")


def torch_stages(
    folder: Path, model_path: str | Path, prompt: str, precision: str, device: str
) -> Stages:
    config = read_config(folder)
    model = TorchModel(model_path, config, precision, device)
    where = f"torch {precision} on {device}"
    return Stages(ExportTokenizer(folder, prompt), model, precision, where)


# --------------------------------------------------------------------------------------------
# Running them: tokenize ahead, embed, write each shard whole
# --------------------------------------------------------------------------------------------


@dataclass
class StageTimes:
    """Seconds spent in each stage and the texts that went through: which stage is slowest.
    Tokenizing runs in a thread beside the model, so the stages' seconds overlap."""

    read: float = 0.0
    tokenize: float = 0.0
    model: float = 0.0
    write: float = 0.0
    texts: int = 0

    def seconds(self) -> dict[str, float]:
        return {
            "read": round(self.read, 3),
            "tokenize": round(self.tokenize, 3),
            "model": round(self.model, 3),
            "write": round(self.write, 3),
        }

    def rates(self) -> dict[str, float]:
        """Texts per second of each stage alone."""
        return {k: (self.texts / s if s > 0 else float("inf")) for k, s in self.seconds().items()}


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(arg)
    return result, time.perf_counter() - start


def embed_stages(
    catalog: Catalog,
    store: Embeddings,
    stages: Stages,
    *,
    shard_size: int = SHARD_SIZE,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
    times: StageTimes | None = None,
    ahead: int = 2,
) -> int:
    """Embed the catalog papers that have no vector yet, a shard at a time; returns how many.

    The texts of the next `ahead` shards are tokenized in a thread while the model embeds
    this one (tokenizers and onnxruntime both release the GIL), so the model never waits for
    text. Each shard is written whole as soon as it is done: a killed run loses at most the
    shards in progress, and the next run starts after the finished ones.
    """
    cids, hashes = store.pending(catalog)
    if limit is not None:
        cids, hashes = cids[:limit], hashes[:limit]
    times = times if times is not None else StageTimes()
    starts = list(range(0, len(cids), shard_size))
    queue: deque[tuple[int, Future[tuple[Any, float]]]] = deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="papers-tokenize")

    def submit(start: int) -> None:
        # SQLite is read here, in the caller's thread: a connection stays in its own thread.
        t = time.perf_counter()
        texts = [text for _, text in catalog.texts(cids[start : start + shard_size])]
        times.read += time.perf_counter() - t
        queue.append((start, pool.submit(_timed, stages.tokenize, texts)))

    done = 0
    try:
        for start in starts[:ahead]:
            submit(start)
        for i in range(len(starts)):
            start, future = queue.popleft()
            tokens, seconds = future.result()
            times.tokenize += seconds
            if i + ahead < len(starts):
                submit(starts[i + ahead])
            vecs, seconds = _timed(stages.model, tokens)
            times.model += seconds
            t = time.perf_counter()
            write_shard(
                store.shards, hashes[start : start + shard_size], vecs, precision=stages.precision
            )
            times.write += time.perf_counter() - t
            n = len(vecs)
            done += n
            times.texts += n
            if progress:
                progress(n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done


# --------------------------------------------------------------------------------------------
# One precision per catalog; an estimate before a long run
# --------------------------------------------------------------------------------------------


def resolve_precision(
    store: Embeddings,
    asked: str | None,
    *,
    available: Sequence[str],
    default: str,
    re_embed: bool = False,
    log: Log = lambda s: None,
) -> str:
    """The precision to embed in: the one asked, else the one the catalog's shards were made
    in, else `default`. Never a mix: another precision than the shards' is refused (one line
    saying what to run) unless `re_embed`, which deletes the shards and merged vectors first
    (after every check, so a refused run deletes nothing)."""
    if asked is not None and asked not in PRECISIONS:
        raise CatalogError(f"unknown precision {asked!r}: use one of {', '.join(PRECISIONS)}")
    found = set() if re_embed else store.precisions()
    if len(found) > 1:
        raise CatalogError(
            f"the catalog's vectors were made in several precisions ({', '.join(sorted(found))}): "
            "run `papers catalog embed --re-embed` to embed them all again in one"
        )
    made = next(iter(found), None)
    want = asked or made or default
    if made is not None and want != made:
        raise CatalogError(
            f"the catalog's vectors were made in {made}; adding {want} vectors would mix them: "
            f"embed with --precision {made}, or add --re-embed to embed every paper again "
            f"in {want}"
        )
    if want not in available:
        offers = f"this run offers {', '.join(available)}"
        gpu = want in ("fp16", "bf16")
        if made is not None:
            raise CatalogError(
                f"the catalog's vectors were made in {made}, which this run cannot make "
                f"({offers}): "
                + ("embed with --ray on a cluster with GPUs, or " if gpu else "")
                + f"add --re-embed to embed every paper again in {default}"
            )
        raise CatalogError(
            f"{want} cannot run here ({offers}): use --precision {default}"
            + (", or --ray on a cluster with GPUs" if gpu else "")
        )
    if re_embed and (store.shards.exists() or store.merged_dir.exists()):
        log(f"deleting the catalog's vectors to embed every paper again in {want}")
        shutil.rmtree(store.shards, ignore_errors=True)
        shutil.rmtree(store.merged_dir, ignore_errors=True)
    return want


def measure_rate(stages: Stages, texts: list[str]) -> float:
    """Papers per second of tokenize + model on `texts` (the user's own, a few dozen) after a
    short warm-up (a runtime's first call allocates): what the estimate before a run uses."""
    warm, timed = texts[:8], texts[8:] or texts
    stages.model(stages.tokenize(warm))
    start = time.perf_counter()
    stages.model(stages.tokenize(timed))
    return len(timed) / max(time.perf_counter() - start, 1e-9)


def estimate_line(todo: int, rate: float, where: str, sample: int) -> str:
    minutes = todo / max(rate, 1e-9) / 60
    when = f"about {minutes:,.0f} min" if minutes >= 1 else "under a minute"
    if minutes >= 120:
        when += f" ({minutes / 60:,.1f} h)"
    return (
        f"embedding {todo:,} papers with {where}: {when} at {rate:,.1f} papers/s "
        f"(measured on {sample} of them)"
    )


def embed_pending(
    catalog: Catalog,
    store: Embeddings,
    encode: Callable[[list[str]], np.ndarray],
    *,
    shard_size: int = SHARD_SIZE,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> int:
    """`embed_stages` with an in-process encoder that takes texts (fp32); returns how many."""
    return embed_stages(
        catalog, store, text_stages(encode), shard_size=shard_size, progress=progress, limit=limit
    )
