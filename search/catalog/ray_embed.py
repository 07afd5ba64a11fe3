"""`papers catalog embed --ray ADDRESS`: embed the catalog on a Ray cluster with Ray Data.

Past one machine, embedding 2.7M abstracts is a batch job, and Ray Data already is the engine
for it: `map_batches` over an actor pool, each actor loading the ONNX export once (a GPU actor
loads the sentence-transformers model on cuda instead), with Ray doing the scheduling, retries
and back-pressure. Nothing here schedules anything itself.

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
from search.encoders.onnx_encoder import OnnxEncoder

# Papers handed to Ray per dataset: bounds the driver's memory (texts of one window).
WINDOW = 200_000

Log = Callable[[str], None]


class EncodeBatch:
    """A Ray Data actor: loads the encoder once, then embeds batch after batch."""

    def __init__(
        self,
        onnx_folder: str,
        prompt: str,
        threads: int,
        model_path: str | None = None,
        device: str = "cpu",
        files: list[Any] | None = None,
    ) -> None:
        self.prompt = prompt
        self.st: Any = None
        self.onnx: Any = None
        if device == "cuda" and model_path and Path(model_path).is_dir():
            from sentence_transformers import SentenceTransformer  # lazy: GPU actors only

            self.st = SentenceTransformer(model_path, device="cuda")
            return

        folder = Path(onnx_folder)
        if not (folder / "encoder.json").is_file() and files:
            folder = _unpack(files[0])  # a node that does not share the library's disk
        self.onnx = OnnxEncoder.load(folder, threads=threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [self.prompt + str(t) for t in batch["text"]]
        if self.st is not None:
            vecs = self.st.encode(texts, batch_size=128, convert_to_numpy=True)
        else:
            vecs = self.onnx.encode(texts)
        vecs = np.asarray(vecs, dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        hashes = np.asarray(batch["hash"], dtype=np.int64)
        return {"hash": hashes, "vector": vecs.astype(np.float16)}


def _pack(folder: Path) -> dict[str, bytes]:
    """The export's files, to ship through Ray's object store (~90 MB, sent once per node)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


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
    """How many encoder actors a cluster gets, and of which kind: one per GPU when it has any
    (sentence-transformers on cuda, no CPU reserved), else one per CPU (the ONNX export)."""

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


def embed_with_ray(
    catalog: Catalog,
    store: Embeddings,
    enc: CatalogEncoder,
    *,
    address: str,
    workers: int | None = None,
    limit: int | None = None,
    log: Log = lambda s: None,
    shard_size: int = SHARD_SIZE,
    stop_after: int | None = None,
) -> int:
    """Embed what has no vector yet on Ray; returns how many papers were embedded.

    `stop_after` (for tests) stops after that many shards, as a killed run would.
    """
    if enc.onnx_folder is None:
        raise CatalogError(
            "--ray needs the ONNX export of the model (run `papers rebuild` once); "
            "in-process encoders cannot be shipped to a cluster"
        )
    cids, hashes = store.pending(catalog)
    if limit is not None:
        cids, hashes = cids[:limit], hashes[:limit]
    if not len(cids):
        return 0
    ray = connect(address, workers)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own progress line is on stderr
    plan = ActorPlan.for_cluster(ray.cluster_resources(), workers)
    log(
        f"ray: {plan.pool} encoder actor(s) on {plan.cpus} CPUs"
        + (f" and {plan.gpus} GPUs (sentence-transformers on cuda)" if plan.use_gpu else "")
    )
    pool, use_gpu = plan.pool, plan.use_gpu
    model_path = str(enc.model_path) if use_gpu and enc.model_path else None
    # Nested in a list so Ray hands the actor the reference, fetched only where needed.
    files = [ray.put(_pack(enc.onnx_folder))]
    done = shards = 0
    for start in range(0, len(cids), WINDOW):
        part_c, part_h = cids[start : start + WINDOW], hashes[start : start + WINDOW]
        items = [
            {"hash": int(h), "text": t}
            for h, (_, t) in zip(part_h, catalog.texts(part_c), strict=True)
        ]
        # At least one batch per actor, or a small window leaves actors idle.
        batch = max(1, min(shard_size, -(-len(items) // pool)))
        ds = ray.data.from_items(items, override_num_blocks=-(-len(items) // batch))
        ds = ds.map_batches(
            EncodeBatch,
            fn_constructor_kwargs={
                "onnx_folder": str(enc.onnx_folder),
                "prompt": enc.document_prompt,
                "threads": plan.threads,
                "model_path": model_path,
                "device": "cuda" if use_gpu else "cpu",
                "files": files,
            },
            batch_size=batch,
            batch_format="numpy",
            # a fixed pool of actors (`concurrency=` says the same, deprecated in Ray 2.51)
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=0 if use_gpu else 1,
            num_gpus=1 if use_gpu else 0,
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            write_shard(store.shards, batch["hash"], batch["vector"])
            done += len(batch["hash"])
            shards += 1
            if stop_after is not None and shards >= stop_after:
                return done
        log(f"ray: {done}/{len(cids)} papers embedded")
    return done
