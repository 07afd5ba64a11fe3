"""`papers catalog embed` as one library call: embed here or on Ray, in one precision, with a
measured estimate before a long run, then merge the vectors for search.

The stages themselves (tokenize, model, write) are search/catalog/embed_stages.py's; Ray's are
search/catalog/ray_embed.py's. This module only decides which run, and reports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from search.catalog.catalog import (
    Catalog,
    CatalogEncoder,
    CatalogError,
    Embeddings,
    EmbedReport,
    Merged,
)
from search.catalog.embed_stages import (
    CPU_DEFAULT,
    ESTIMATE_MIN,
    ESTIMATE_SAMPLE,
    ON_CPU,
    Stages,
    StageTimes,
    embed_stages,
    estimate_line,
    measure_rate,
    onnx_stages,
    resolve_precision,
    text_stages,
)
from search.catalog.ray_embed import embed_with_ray
from search.catalog.recommend import build_keywords, keywords_damage
from search.library import Paths

Log = Callable[[str], None]


@dataclass
class EmbedRequest:
    """What `papers catalog embed` was asked to do."""

    precision: str | None = None
    re_embed: bool = False
    limit: int | None = None
    ray_address: str | None = None
    workers: int | None = None


def local_stages(enc: CatalogEncoder, precision: str) -> Stages:
    """The stages for embedding here: the ONNX export, or an in-process encoder (fp32)."""
    if enc.onnx_folder is None:
        return text_stages(enc.encode)
    return onnx_stages(enc.onnx_folder, enc.document_prompt, precision)


def embed_locally(
    catalog: Catalog,
    store: Embeddings,
    enc: CatalogEncoder,
    request: EmbedRequest,
    *,
    log: Log,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    times: StageTimes | None = None,
) -> tuple[int, str]:
    """Embed what has no vector yet on this machine; returns (papers embedded, precision)."""
    available = ON_CPU if enc.onnx_folder is not None else ("fp32",)
    default = CPU_DEFAULT if enc.onnx_folder is not None else "fp32"
    precision = resolve_precision(
        store,
        request.precision,
        available=available,
        default=default,
        re_embed=request.re_embed,
        log=log,
    )
    cids, _ = store.pending(catalog)
    todo = min(len(cids), request.limit) if request.limit else len(cids)
    if not todo:
        return 0, precision
    stages = local_stages(enc, precision)
    if todo >= ESTIMATE_MIN:
        sample = [t for _, t in catalog.texts(cids[: ESTIMATE_SAMPLE + 8])]
        rate = measure_rate(stages, sample)
        log(estimate_line(todo, rate, stages.where, max(1, len(sample) - 8)))
    else:
        log(f"embedding {todo:,} papers with {stages.where}…")
    done = embed_stages(
        catalog,
        store,
        stages,
        progress=progress(todo) if progress else None,
        limit=request.limit,
        times=times,
    )
    return done, precision


def embed_catalog(
    paths: Paths,
    catalog: Catalog,
    enc: CatalogEncoder,
    request: EmbedRequest,
    *,
    log: Log = lambda s: None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> EmbedReport:
    """Embed the catalog papers with no vector yet (here, or on Ray), then merge the vectors
    for search; the report says how many, in which precision, and each stage's seconds."""
    store = Embeddings.of(paths, enc.fingerprint)
    start = time.perf_counter()
    store.drop_damaged_shards(log=log)  # their papers count as not embedded: embedded again
    pending, _ = store.pending(catalog)
    report = EmbedReport(papers=catalog.count(), already=catalog.count() - len(pending))
    # An explicit precision is checked against the catalog's even with nothing to embed.
    if len(pending) or request.re_embed or request.precision is not None:
        if request.ray_address:
            report.embedded, report.precision = embed_with_ray(
                catalog,
                store,
                enc,
                address=request.ray_address,
                workers=request.workers,
                limit=request.limit,
                precision=request.precision,
                re_embed=request.re_embed,
                log=log,
                progress=progress,
            )
            report.workers = f"ray ({request.ray_address})"
        else:
            times = StageTimes()
            report.embedded, report.precision = embed_locally(
                catalog, store, enc, request, log=log, progress=progress, times=times
            )
            report.stages = times.seconds()
        if request.re_embed:
            report.already = 0
    merged = _current_merged(catalog, store, log)
    if merged is None:
        merged = store.merge(catalog, log=log)
        build_keywords(catalog, merged, log=log)
    elif damage := keywords_damage(merged):
        log(f"{damage}: writing it again")
        build_keywords(catalog, merged, log=log)
    report.precision = report.precision or str(merged.meta.get("precision") or "fp32")
    report.shards = len(store.shard_files())
    report.missing = int(merged.meta.get("missing", 0))
    report.seconds = round(time.perf_counter() - start, 2)
    return report


def _current_merged(catalog: Catalog, store: Embeddings, log: Log) -> Merged | None:
    """The merged vectors when they are up to date and readable; None when they must be
    merged again (stale, or a damaged file, which is said)."""
    if not store.is_current(catalog):
        return None
    try:
        return store.load(catalog)
    except CatalogError as e:
        log(f"{str(e).split(': run')[0]}: merging again")
        return None
