"""`papers catalog embed --ray ADDRESS`: embed the catalog on a Ray cluster with Ray Data.

Past one machine, embedding 2.7M abstracts is a batch job, and Ray Data already is the engine
for it. Two stages, as search/catalog/embed.py explains: `tokenize_batch`, Ray Data tasks on
the cluster's CPUs turning text into token ids (padded to the model's window, longest first),
then `ModelBatch`, a pool of actors that only run the model: one per GPU (torch, fp16 by
default, on length-sorted batches), else one per CPU (the ONNX export, fp32 or int8). Ray
does the scheduling, retries and back-pressure; nothing here schedules anything itself.

Texts go out from the driver in windows of WINDOW papers (so the driver never holds 2.7M
abstracts), and each finished batch comes back as (hashes, float16 vectors) and is written by
the driver as one shard in catalog/embeddings/<fingerprint>/shards/: workers need no shared
filesystem, and a killed run keeps every shard written so far (the next run embeds only what
no shard holds). The vectors are those of the local path: same export, same prompt, unit rows.

Ray is an optional dependency (`pip install 'papers[ray]'`): it is imported only here.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.catalog.catalog import (
    SHARD_SIZE,
    Catalog,
    CatalogEncoder,
    CatalogError,
    Embeddings,
    write_shard,
)
from search.catalog.embed_stages import (
    CPU_DEFAULT,
    GPU_DEFAULT,
    ON_CPU,
    ON_GPU,
    ExportTokenizer,
    OnnxModel,
    TorchModel,
    resolve_precision,
)
from search.encoders.onnx_encoder import CONFIG_FILE, TOKENIZER_FILE, read_config

# Papers handed to Ray per dataset: bounds the driver's memory (texts of one window).
WINDOW = 200_000
# Texts per tokenize task: big enough that a task's start is a small part of it, small enough
# that every CPU gets some (tokenizing 1,024 abstracts takes ~0.5 s on one core).
TOKENIZE_BATCH = 1024
# CPUs a tokenize task reserves on a cluster without GPUs, where the model actors reserve the
# rest of each core (MODEL_CPUS): tokenizing is ~2 % of what the ONNX model costs per text on
# CPUs (bench/catalog_embed.py), so it shares the model's cores instead of taking one away.
TOKENIZE_CPUS_SHARED = 0.1
MODEL_CPUS = 0.9

Log = Callable[[str], None]


def _export_tokenizer(folder: Path | None, files: Any, prompt: str) -> ExportTokenizer:
    """The export's tokenizer in this worker process (loaded once per process)."""
    key = (str(folder), prompt)
    found = _TOKENIZERS.get(key)
    if found is None:
        where = folder if folder is not None and (folder / CONFIG_FILE).is_file() else None
        found = ExportTokenizer(where or _unpack(files[0]), prompt)
        _TOKENIZERS[key] = found
    return found


_TOKENIZERS: dict[tuple[str, str], ExportTokenizer] = {}


def tokenize_batch(
    batch: dict[str, np.ndarray], *, folder: str, files: list[Any], prompt: str
) -> dict[str, np.ndarray]:
    """The CPU stage: texts to token ids, longest first, padded to the model's window (one
    width for every batch, so Ray can join batches into the model stage's)."""
    # One task per CPU: tokenizers must not start a thread per core of its own in each.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = _export_tokenizer(Path(folder), files, prompt)
    rows = tok([str(t) for t in batch["text"]])
    lengths = np.asarray([len(ids) for ids, _types in rows], dtype=np.int32)
    order = np.argsort(-lengths, kind="stable")
    window = tok.config.get("max_seq_length")
    width = int(window) if window else int(lengths.max(initial=1))
    ids = np.zeros((len(rows), width), dtype=np.int32)
    types = np.zeros((len(rows), width), dtype=np.int8)
    for out_row, i in enumerate(order):
        row_ids, row_types = rows[i]
        ids[out_row, : len(row_ids)] = row_ids
        types[out_row, : len(row_ids)] = row_types
    return {
        "hash": np.asarray(batch["hash"], dtype=np.int64)[order],
        "ids": ids,
        "types": types,
        "length": lengths[order],
    }


def token_rows(batch: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The model stage's input back as unpadded rows (what the runtimes pad per batch)."""
    return [
        (
            np.asarray(batch["ids"][i, :n], dtype=np.int64),
            np.asarray(batch["types"][i, :n], dtype=np.int64),
        )
        for i, n in enumerate(np.asarray(batch["length"]).tolist())
    ]


class ModelBatch:
    """A Ray Data actor that only runs the model: loads it once (torch on a GPU, else the
    ONNX export), then embeds batch after batch of token ids."""

    def __init__(
        self,
        onnx_folder: str,
        precision: str,
        threads: int,
        model_path: str | None = None,
        device: str = "cpu",
        files: list[Any] | None = None,
    ) -> None:
        folder = Path(onnx_folder)
        if not (folder / CONFIG_FILE).is_file() and files:
            folder = _unpack(files[0])  # a node that does not share the library's disk
        self.model: Any
        if device != "cpu":
            if not model_path or not Path(model_path).is_dir():
                raise CatalogError(
                    f"the model folder {model_path} is not on this GPU node: install papers "
                    "and the model the same way on every node"
                )
            self.model = TorchModel(model_path, read_config(folder), precision, device)
        else:
            self.model = OnnxModel(folder, precision, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = self.model(token_rows(batch))
        hashes = np.asarray(batch["hash"], dtype=np.int64)
        return {"hash": hashes, "vector": vecs.astype(np.float16)}


def _pack(folder: Path, names: list[str] | None = None) -> dict[str, bytes]:
    """The export's files (or the named ones), to ship through Ray's object store."""
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and (names is None or p.name in names)
    }


def _unpack(ref: Any) -> Path:
    import ray

    files: dict[str, bytes] = ray.get(ref)
    folder = Path(tempfile.mkdtemp(prefix="papers-encoder-"))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _ray() -> Any:
    # Ray's progress bars replace builtins.print in this process unless told not to; that breaks
    # numba-compiled code (UMAP for the map) later in the same process, and is not ours to change.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        import ray
    except ImportError:
        raise CatalogError(
            "--ray needs Ray: pip install 'ray[data]' (or install papers with the [ray] extra)"
        ) from None
    return ray


def connect(address: str, workers: int | None) -> Any:
    """Join the cluster at `address` ('local' starts a private instance on this machine)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "WARNING",
    }
    try:
        if address == "local":
            ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CatalogError(f"cannot connect to Ray at {address}: {first}") from None
    return ray


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors a cluster gets, and of which kind: one per GPU when it has any
    (torch on cuda; tokenizing takes the CPUs), else one per CPU (the ONNX export)."""

    pool: int
    threads: int  # intra-op threads of each actor
    use_gpu: bool
    cpus: int
    gpus: int

    @classmethod
    def for_cluster(cls, resources: dict[str, float], workers: int | None) -> ActorPlan:
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        use_gpu = gpus > 0
        pool = workers or (gpus if use_gpu else cpus)
        # One intra-op thread per CPU actor: Ray gives each actor one CPU, and several actors
        # each using every core would fight over them.
        threads = 1 if pool > 1 or use_gpu else cpus
        return cls(pool, threads, use_gpu, cpus, gpus)

    @property
    def precisions(self) -> tuple[str, ...]:
        return ON_GPU if self.use_gpu else ON_CPU

    @property
    def default_precision(self) -> str:
        return GPU_DEFAULT if self.use_gpu else CPU_DEFAULT

    def resources(self) -> dict[str, dict[str, float]]:
        """Ray resources of a tokenize task and of a model actor. With GPUs, a model actor
        takes its GPU and one CPU (to feed it) and tokenize tasks one CPU each, spreading
        over the rest; without, the model actors hold most of every core and tokenizing
        shares them (TOKENIZE_CPUS_SHARED): reserving a whole core would leave it idle
        98 % of the time, or starve a model actor of one."""
        if self.use_gpu:
            return {"tokenize": {"num_cpus": 1.0}, "model": {"num_cpus": 1.0, "num_gpus": 1.0}}
        return {
            "tokenize": {"num_cpus": TOKENIZE_CPUS_SHARED},
            "model": {"num_cpus": MODEL_CPUS, "num_gpus": 0.0},
        }


@dataclass
class _Pipeline:
    """The two stages a window of papers goes through: tokenize tasks on CPUs, then the
    model-only actors (GPU or CPU), as one Ray Data dataset per window."""

    folder: str
    prompt: str
    precision: str
    plan: ActorPlan
    model_path: str | None
    tok_files: list[Any]
    model_files: list[Any]
    shard_size: int

    def dataset(self, ray: Any, items: list[dict[str, Any]]) -> Any:
        plan, resources = self.plan, self.plan.resources()
        # At least one batch per actor, or a small window leaves actors idle.
        batch = max(1, min(self.shard_size, -(-len(items) // plan.pool)))
        ds = ray.data.from_items(items, override_num_blocks=-(-len(items) // batch))
        ds = ds.map_batches(
            tokenize_batch,
            fn_kwargs={"folder": self.folder, "files": self.tok_files, "prompt": self.prompt},
            batch_size=min(TOKENIZE_BATCH, batch),
            batch_format="numpy",
            **resources["tokenize"],
        )
        return ds.map_batches(
            ModelBatch,
            fn_constructor_kwargs={
                "onnx_folder": self.folder,
                "precision": self.precision,
                "threads": plan.threads,
                "model_path": self.model_path,
                "device": "cuda" if plan.use_gpu else "cpu",
                "files": self.model_files,
            },
            batch_size=batch,
            batch_format="numpy",
            # a fixed pool of actors (`concurrency=` says the same, deprecated in Ray 2.51)
            compute=ray.data.ActorPoolStrategy(size=plan.pool),
            **resources["model"],
        )


def embed_with_ray(
    catalog: Catalog,
    store: Embeddings,
    enc: CatalogEncoder,
    *,
    address: str,
    workers: int | None = None,
    limit: int | None = None,
    precision: str | None = None,
    re_embed: bool = False,
    log: Log = lambda s: None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    shard_size: int = SHARD_SIZE,
    stop_after: int | None = None,
) -> tuple[int, str]:
    """Embed what has no vector yet on Ray; returns (papers embedded, precision).

    `stop_after` (for tests) stops after that many shards, as a killed run would.
    """
    if enc.onnx_folder is None:
        raise CatalogError(
            "--ray needs the ONNX export of the model (run `papers rebuild` once); "
            "in-process encoders cannot be shipped to a cluster"
        )
    ray = connect(address, workers)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own progress line is on stderr
    plan = ActorPlan.for_cluster(ray.cluster_resources(), workers)
    precision = resolve_precision(
        store,
        precision,
        available=plan.precisions,
        default=plan.default_precision,
        re_embed=re_embed,
        log=log,
    )
    cids, hashes = store.pending(catalog)
    if limit is not None:
        cids, hashes = cids[:limit], hashes[:limit]
    if not len(cids):
        return 0, precision
    kind = f"torch {precision} on {plan.gpus} GPUs" if plan.use_gpu else f"ONNX {precision}"
    log(f"ray: {plan.pool} model actor(s) ({kind}), tokenizing on {plan.cpus} CPUs")
    pipeline = _Pipeline(
        folder=str(enc.onnx_folder),
        prompt=enc.document_prompt,
        precision=precision,
        plan=plan,
        model_path=str(enc.model_path) if plan.use_gpu and enc.model_path else None,
        # Nested in lists so Ray hands the reference over, fetched only where it is needed.
        tok_files=[ray.put(_pack(enc.onnx_folder, [TOKENIZER_FILE, CONFIG_FILE]))],
        model_files=[ray.put(_pack(enc.onnx_folder))],
        shard_size=shard_size,
    )
    step = progress(len(cids)) if progress else None
    done = shards = 0
    started = time.perf_counter()
    for start in range(0, len(cids), WINDOW):
        part_c, part_h = cids[start : start + WINDOW], hashes[start : start + WINDOW]
        items = [
            {"hash": int(h), "text": t}
            for h, (_, t) in zip(part_h, catalog.texts(part_c), strict=True)
        ]
        ds = pipeline.dataset(ray, items)
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            write_shard(store.shards, out["hash"], out["vector"], precision=precision)
            n = len(out["hash"])
            done += n
            shards += 1
            if step:
                step(n)
            if shards == 1 and len(cids) >= 4 * n:
                rate = done / max(time.perf_counter() - started, 1e-9)
                log(
                    f"ray: first {done:,} papers in {time.perf_counter() - started:.0f} s "
                    f"(start-up included): about {(len(cids) - done) / rate / 60:,.0f} min left"
                )
            if stop_after is not None and shards >= stop_after:
                return done, precision
    return done, precision
