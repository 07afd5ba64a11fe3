"""`papers rebuild`: read notes/, embed what changed, and swap in a new index generation."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search.encoders.encoder import ModelSpec, resolve_model
from search.encoders.index_encoder import encoder_exported, model_info
from search.errors import (
    DiskFull,
    IndexDamaged,
    LockBusy,
    NotesError,
    PapersError,
    disk_full_error,
    human_bytes,
)
from search.library import Paths
from search.readers.incremental import (
    PDF_CACHE,
    ParseCache,
    cache_readings,
    check_notes_dir,
    collect_papers,
    merge_files,
    read_file,
    read_notes_dir,
    read_with_cache,
    records_by_file,
    report_problems,
    report_shrunk,
    scan_notes,
)
from search.readers.records import (
    Problem,
)
from search.storage import map as library_map
from search.storage import store, vectors
from search.storage.generation import (
    ModelPlan,
    Pause,
    Progress,
    RebuildReport,
    build_generation,
    open_writer,
    write_generation,
)
from search.storage.patch import patch_generation, plan_patch

# Re-exported: the rebuild's report and callbacks are part of the API (search.api), and
# collect_papers / read_notes_dir read notes without an index.
__all__ = [
    "Pause",
    "Progress",
    "RebuildReport",
    "check_notes_dir",
    "collect_papers",
    "read_file",
    "read_notes_dir",
    "rebuild",
]

Log = Callable[[str], None]


@contextmanager
def rebuild_lock(index_dir: Path, wait: bool) -> Iterator[None]:
    """Only one rebuild at a time; the lock dies with its process (even on SIGKILL)."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / "rebuild.lock"))
    holder = index_dir / "rebuild.lock.holder"
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        who = "another process"
        try:
            info = json.loads(holder.read_text(encoding="utf-8"))
            who = f"pid {info['pid']} (started {info['started']})"
        except (OSError, ValueError, KeyError):
            pass
        raise LockBusy(
            f"another rebuild is running: {who} holds {index_dir / 'rebuild.lock'}; "
            "wait for it or pass --wait"
        ) from None
    try:
        holder.write_text(
            json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}),
            encoding="utf-8",
        )
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _open_previous(index_dir: Path) -> tuple[store.Index | None, str | None]:
    """The live generation, fully verified, or (None, why it cannot be used)."""
    try:
        return store.Index.open(index_dir, verify=True), None
    except IndexDamaged as e:
        return None, str(e).split(": run `papers rebuild`")[0]
    except PapersError:
        return None, None


def rebuild(
    paths: Paths,
    *,
    model: str | None = None,
    full: bool = False,
    wait: bool = False,
    verify: bool = False,
    follow_links: bool = False,
    log: Log = lambda s: None,
    progress: Progress | None = None,
    pause: Pause | None = None,
) -> RebuildReport:
    """Bring index/ in line with notes/, embedding only what changed.

    `verify`: re-hash every note file's content (sha256) and re-parse those whose content
    changed even though size and mtime did not. `follow_links`: follow symlinks in notes/
    that lead out of the library.

    Raises:
        NotesError: notes/ missing or holding no notes.
        ModelError: the model cannot be found or loaded.
        LockBusy: another rebuild is running (unless `wait`).
        DiskFull: the disk filled up (the previous index is left as it was).
    """
    start = time.perf_counter()
    pause = pause or store.no_pause
    check_notes_dir(paths.notes)
    store.check_index_dir(paths.index)
    spec = resolve_model(model)
    try:
        with rebuild_lock(paths.index, wait):
            pause("locked")
            store.prune(paths.index)
            previous, damage = _open_previous(paths.index)
            if damage:
                log(f"previous index is unusable ({damage}); building a new one")
            try:
                report = _rebuild_locked(
                    paths, spec, previous, damage, full, verify, follow_links, log, progress, pause
                )
            finally:
                if previous is not None:
                    previous.close()
            pause("published")
            store.prune(paths.index)
    except (OSError, sqlite3.Error, RuntimeError) as e:
        if not disk_full_error(e):
            raise
        raise DiskFull(_disk_full_message(paths, e)) from None
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _disk_full_message(paths: Paths, e: BaseException) -> str:
    if isinstance(e, OSError):
        what = f"writing {e.filename or 'the index'} ({e.strerror or e})"
    elif isinstance(e, sqlite3.Error):
        what = f"writing the index database ({e})"
    else:
        what = "writing the vector file (FAISS write error)"
    try:
        kept = store.current_generation(paths.index) is not None
    except IndexDamaged:
        kept = False
    where = paths.index if paths.index.exists() else paths.root
    try:
        free = f"{human_bytes(shutil.disk_usage(where).free)} free on the disk holding {where}"
    except OSError:
        free = f"free space on the disk holding {where} unknown"
    previous = "the previous index is intact" if kept else "no index was written"
    return f"rebuild failed, the disk is full: {what}; {previous}; {free}"


def _rebuild_locked(
    paths: Paths,
    spec: ModelSpec,
    previous: store.Index | None,
    damage: str | None,
    full: bool,
    verify: bool,
    follow_links: bool,
    log: Log,
    progress: Progress | None,
    pause: Pause,
) -> RebuildReport:
    """The rebuild, holding the lock, step by step; each step lives with what it touches
    (reading in search.readers.incremental, rows and vectors in search.storage)."""
    report = RebuildReport(model=spec.name)
    model = _plan_model(spec, previous, damage, full, report, log)
    scan = scan_notes(paths, follow_links)
    report.files = len(scan.stats)
    cache = ParseCache(previous, scan, paths.index / PDF_CACHE, full=full, verify=verify)
    unchanged = model.reuse and cache.nothing_changed(scan)
    if unchanged and encoder_exported(paths.index, model.info, spec):
        return _unchanged_report(report, cache, scan.problems, log)

    tmp = store.new_generation_dir(paths.index)
    library_map.warm_up(previous)
    db: store.GenerationWriter | None = None
    try:
        # Read: unchanged files from the parse cache, the rest parsed again.
        readings, report.files_parsed = read_with_cache(scan, cache)
        report.shrunk = report_shrunk(previous, readings, log)
        files = records_by_file(readings, scan.problems)
        report.problems = report_problems(scan.problems, log)
        if not any(records for _rel, records in files):
            raise NotesError(f"no papers found in the notes under {paths.notes}")
        # Write: a copy of the previous generation patched, or a new one.
        patch = plan_patch(previous, model, cache, readings, files)
        db = open_writer(tmp, previous, copy=patch is not None)
        cache_readings(db, readings, scan, cache, patch.changed if patch else None)
        del readings
        if patch is None:
            papers, where = merge_files(files)
            del files
            pause("parsed")
            built = build_generation(
                db, paths, model, previous, papers, where, report, log, progress, pause
            )
        else:
            del files
            pause("parsed")
            assert previous is not None
            built = patch_generation(
                db, paths, model, previous, patch, report, log, progress, pause
            )
        vectors.write(built.index, tmp / store.FAISS_NAME)
        # The map of the library (storage/map.py) goes into the generation it describes; after
        # the vector file, whose write lets the map's background import (warm_up) run.
        mapped = previous if model.reuse else None
        library_map.update_generation(db, tmp, built.index, mapped, log)
        write_generation(db, tmp, built, spec, model, cache.parser)
        del built
        pause("written")
        # Publish: questions get their fast encoder, and the new generation is swapped in.
        _publish(paths, tmp, spec, model, previous, log, pause)
    except BaseException:
        if db is not None:
            db.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _plan_model(
    spec: ModelSpec,
    previous: store.Index | None,
    damage: str | None,
    full: bool,
    report: RebuildReport,
    log: Log,
) -> ModelPlan:
    """Vectors made with another model or other settings cannot be mixed with new ones: if
    anything that changes the vectors changed, every chunk is embedded again (and the report
    says why)."""
    old_manifest = previous.manifest if previous else {}
    info = model_info(spec, old_manifest or None, log)
    settings = info.settings()
    reuse = previous is not None and not full
    if full:
        report.reembed_reason = "--full"
    elif previous is not None:
        old_settings = {k: old_manifest.get(k) for k in settings}
        if old_settings != settings:
            changed = sorted(k for k in settings if old_settings.get(k) != settings[k])
            report.reembed_reason = _reason(changed, old_manifest, spec)
            reuse = False
    elif damage:
        report.reembed_reason = f"the previous index is unusable ({damage})"
    if report.reembed_reason:
        log(f"re-embedding everything: {report.reembed_reason}")
    return ModelPlan(info, settings, reuse)


def _unchanged_report(
    report: RebuildReport, cache: ParseCache, problems: list[Problem], log: Log
) -> RebuildReport:
    """Nothing to do: the live generation stays, and the report repeats its counts and
    problems."""
    assert cache.previous is not None
    for probs_json in cache.previous.cached_problems():
        problems.extend(Problem(**p) for p in json.loads(probs_json))
    report.problems = report_problems(problems, log, cached=True)
    manifest = cache.previous.manifest
    report.nothing_changed = True
    report.papers = int(manifest.get("papers", 0))
    report.chunks = int(manifest.get("chunks", 0))
    report.papers_unchanged = report.papers
    report.chunks_unchanged = report.chunks
    return report


def _publish(
    paths: Paths,
    tmp: Path,
    spec: ModelSpec,
    model: ModelPlan,
    previous: store.Index | None,
    log: Log,
    pause: Pause,
) -> None:
    """Make sure questions have their fast encoder, and swap the new generation in atomically
    (store.publish)."""
    if not encoder_exported(paths.index, model.info, spec, log):
        model.info.encoder(paths.index, log)  # loading the model exports it (or warns once)
    store.publish(paths.index, tmp, pause)


def _reason(changed: list[str], old: dict[str, Any], spec: ModelSpec) -> str:
    if "fingerprint" in changed:
        return f"the model changed ({old.get('model', '?')} → {spec.name})"
    return "settings that change the vectors changed: " + ", ".join(changed)
