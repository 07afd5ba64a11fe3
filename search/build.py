"""`papers rebuild`: read notes/, embed what changed, and swap in a new index generation."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import map as library_map
from . import store, vectors
from .chunking import (
    MAX_EMBED_CHARS,
    PaperText,
    chunk_key,
    chunk_pages,
    full_length,
    paper_text,
)
from .config import Config, load_config
from .encoder import Encoder, ModelSpec, resolve_model
from .errors import DiskFull, IndexDamaged, LockBusy, NotesError, PapersError
from .importers import read_note_data
from .index_encoder import ModelInfo, encoder_exported, model_info
from .keywords import keyword_rows
from .library import Paper, Paths, merge, merge_keys, paper_id
from .notes_folder import (
    FileReading,
    final_problems,
    final_records,
    link_resolver,
    read_notes,
    resolve_links,
    result_from_json,
    result_to_json,
    summary,
)
from .pdfs import read_pdf_file
from .records import (
    SURROGATE,
    SURROGATE_MESSAGE,
    FileResult,
    Problem,
    Record,
    normalise_title,
    scrub_record,
    summarise_problems,
)
from .zotero import is_zotero_source, read_zotero, zotero_sources

Log = Callable[[str], None]
# progress(total) returns a callback advanced by the number of chunks just embedded
Progress = Callable[[int], Callable[[int], None]]
# pause(stage) is called as a rebuild reaches each stage; tests pass one that stops there so
# they can SIGKILL the process at a known point. Stages, in order: locked, parsed, embedded
# (after the first batch), written (new generation complete in index/tmp-*), synced (checksums
# written), renamed (now index/gen-*, CURRENT not yet replaced), published.
Pause = Callable[[str], None]


def _no_pause(stage: str) -> None:
    """The default: a rebuild runs straight through."""


# Chunks handed to the encoder at once. It sorts them by token length so that its batches carry
# little padding: the bigger the window the less padding (a few thousand chunks of text and ids
# are a few MB; memory grows with the window, not with the library).
EMBED_BATCH = 2048


@dataclass
class RebuildReport:
    """What a rebuild did (all counts are papers or chunks)."""

    files: int = 0
    files_parsed: int = 0
    problems: list[str] = field(default_factory=list)
    papers: int = 0
    chunks: int = 0
    papers_added: int = 0
    papers_changed: int = 0
    papers_removed: int = 0
    papers_unchanged: int = 0
    # chunks: new = unchanged + changed + added; old = unchanged + changed + removed.
    # "changed" pairs a new chunk of a changed paper with one of its old chunks that went away.
    chunks_added: int = 0
    chunks_changed: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    chunks_embedded: int = 0  # added + changed: what the encoder had to run on
    reembed_reason: str | None = None
    nothing_changed: bool = False
    model: str = ""
    seconds: float = 0.0


# -- reading notes -----------------------------------------------------------------------------


def read_file(
    path: Path, rel: str, read_as: str = "auto", pdf_cache: Path | None = None
) -> FileResult:
    """Read one file under notes/ (or the Zotero library, see search.zotero) by its kind;
    never raises for bad content. `read_as` ("auto", "list", "paper") is how a Markdown note
    is read (papers.toml, links). PDF text is cached by content hash in `pdf_cache`."""
    if is_zotero_source(rel):
        return read_zotero(path, pdf_cache)
    if path.suffix.lower() == ".pdf":
        return read_pdf_file(path, rel, pdf_cache)
    if path.suffix.lower() in (".bib", ".jsonl"):
        result = read_note_data(path, rel)
        n = len(result.records)
        result.reading = result.reading or f"data: {n} record{'s' if n != 1 else ''}"
        return result
    # search.notes loads markdown-it, PyYAML and python-frontmatter: only reading notes needs them
    from .notes import read_markdown_file

    return read_markdown_file(path, rel, read_as)


def _rel(path: Path, notes: Path) -> str:
    return path.relative_to(notes).as_posix()


def _printable_name(name: str) -> str:
    """A file name as text: bytes that are not valid UTF-8 (which Python keeps as lone
    surrogates) shown escaped, `bad\\xff.md`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_notes_dir(notes: Path) -> None:
    if not notes.is_dir():
        raise NotesError(f"no notes folder at {notes}: create it and put your notes there")


def collect_papers(notes_dir: Path, config: Config | None = None) -> list[Paper]:
    """Every paper in the notes, parsed afresh (no index needed). `config` defaults to the
    papers.toml beside the notes folder."""
    return merge(final_records(read_notes_dir(notes_dir, config)[0]))


def read_notes_dir(
    notes_dir: Path, config: Config | None = None
) -> tuple[list[FileReading], list[Problem]]:
    """How every note file reads (no index, no cache), and the problems met listing them."""
    from .notes import list_note_files  # markdown-it and YAML: see read_file

    check_notes_dir(notes_dir)
    if config is None:
        config = load_config(notes_dir.parent)
    files, problems = list_note_files(notes_dir)
    rels = [(f, _rel(f, notes_dir)) for f in files if config.included(_rel(f, notes_dir))]
    rels += [(d, rel) for d, rel, _size, _mtime in zotero_sources(notes_dir.parent, problems)]
    pdf_cache = notes_dir.parent / "index" / PDF_CACHE

    def read(path: Path, rel: str, read_as: str) -> FileResult:
        return read_clean(path, rel, read_as, pdf_cache)

    return read_notes(rels, config, read), problems


def read_clean(path: Path, rel: str, read_as: str, pdf_cache: Path | None) -> FileResult:
    """`read_file`, with lone surrogates replaced and long problem lists summarised: what is
    stored and printed."""
    result = read_file(path, rel, read_as, pdf_cache)
    _scrub_surrogates(result)
    # A file of 700k bad records gives a few lines and a count, in the report and the cache.
    result.problems = summarise_problems(result.problems)
    return result


def _scrub_surrogates(result: FileResult) -> bool:
    """Replace lone surrogates left by any reader (JSON or YAML escapes), each record with
    them reported once: SQLite, JSON output and the terminal cannot encode them. True if
    anything was replaced."""
    found = False
    for p in result.problems:
        if SURROGATE.search(p.message):
            p.message, found = SURROGATE.sub("\ufffd", p.message), True
    reported = {(p.file, p.line) for p in result.problems if p.message == SURROGATE_MESSAGE}
    for r in result.records:
        if scrub_record(r):
            found = True
            if (r.file, r.line) not in reported:
                result.problems.append(Problem(r.file, r.line, SURROGATE_MESSAGE))
    return found


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


def _records_to_json(records: list[Record]) -> str:
    # dataclasses.asdict deep-copies every list and dict: a fifth of a 1M-bullet rebuild.
    return json.dumps(
        [{k: getattr(r, k) for k in _RECORD_FIELDS} for r in records], ensure_ascii=False
    )


def _records_from_json(text: str) -> list[Record]:
    return [Record(**d) for d in json.loads(text)]


def _problems_to_json(problems: list[Problem]) -> str:
    return json.dumps([dataclasses.asdict(p) for p in problems])


def _content_hash(path: Path) -> str | None:
    """sha256 of a note file's bytes, kept in the parse cache; None if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


# -- locking -------------------------------------------------------------------------------------


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


# -- the rebuild -----------------------------------------------------------------------------------

# The parse cache is valid only for the code that produced it: bump this whenever a reader
# (notes.py, notes_folder.py, importers.py, records.py, pdfs.py, zotero.py) changes what it
# returns for a file.
PARSER_VERSION = "notes-3"
# Text extracted from PDFs, by content hash (index/pdf-cache/<sha256>.json): outlives
# generations, since a PDF's text does not depend on anything else.
PDF_CACHE = "pdf-cache"


def parser_version() -> str:
    return PARSER_VERSION


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
    pause = pause or _no_pause
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


def disk_full_error(e: BaseException) -> bool:
    """True for the ways a full disk (or quota) shows up: OSError ENOSPC/EDQUOT, SQLite's
    SQLITE_FULL, and FAISS's write error (a RuntimeError quoting the failed write)."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(e).lower()
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in text
    if isinstance(e, RuntimeError):
        # FAISS quotes strerror: "write error in …: 4051 != 16000 (No space left on device)"
        return "no space left" in text or "quota exceeded" in text
    return False


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


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


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
    """The rebuild, holding the lock: each step below is a function of its own."""
    report = RebuildReport(model=spec.name)
    model = _plan_model(spec, previous, damage, full, report, log)
    scan = _scan_notes(paths, follow_links)
    report.files = len(scan.stats)
    cache = _ParseCache(previous, scan, paths.index / PDF_CACHE, full=full, verify=verify)
    unchanged = model.reuse and cache.nothing_changed(scan)
    if unchanged and encoder_exported(paths.index, model.info, spec):
        return _unchanged_report(report, cache, scan.problems, log)

    tmp = store.new_generation_dir(paths.index)
    library_map.warm_up(previous)
    db: store.GenerationWriter | None = None
    try:
        readings = _read_with_cache(scan, cache, report)
        files = _final_records(readings, scan.problems, paths.notes, report, log)
        patch = _plan_patch(previous, model, cache, readings, files)
        db = _open_writer(tmp, previous, patch)
        _cache_readings(db, readings, scan, cache, patch)
        del readings
        if patch is None:
            papers, where = _merge_files(files)
            del files
            pause("parsed")
            built = _build_generation(
                db, paths, model, previous, papers, where, report, log, progress, pause
            )
        else:
            del files
            pause("parsed")
            assert previous is not None
            built = _patch_generation(
                db, paths, model, previous, patch, report, log, progress, pause
            )
        vectors.write(built.index, tmp / store.FAISS_NAME)
        # The map of the library (search/map.py) goes into the generation it describes; after
        # the vector file, whose write lets the map's background import (warm_up) run.
        mapped = previous if model.reuse else None
        library_map.update_generation(db, tmp, built.index, mapped, log)
        _write_generation(db, tmp, built, spec, model)
        del built
        pause("written")
        _publish(paths, tmp, spec, model, previous, log, pause)
    except BaseException:
        if db is not None:
            db.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


@dataclass
class _ModelPlan:
    """The model that embeds this rebuild, and whether the previous generation's vectors may
    be kept (`reuse`: same model and vector settings, no --full)."""

    info: ModelInfo
    settings: dict[str, Any]
    reuse: bool


def _plan_model(
    spec: ModelSpec,
    previous: store.Index | None,
    damage: str | None,
    full: bool,
    report: RebuildReport,
    log: Log,
) -> _ModelPlan:
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
    return _ModelPlan(info, settings, reuse)


# A file the rebuild reads: (path, path under notes/, size, mtime_ns).
FileStat = tuple[Path, str, int, int]


@dataclass
class _Scan:
    """Every file a rebuild reads, in order, with the problems met listing them and the
    papers.toml that chose them."""

    stats: list[FileStat]
    problems: list[Problem]
    config: Config


def _scan_notes(paths: Paths, follow_links: bool) -> _Scan:
    """List and stat the note files papers.toml includes: size and mtime decide which files
    are parsed again. The Zotero library named in papers.toml is one more "file": its stat key
    covers the database, its -wal and the attachment files, so an unchanged library is not
    read."""
    from .notes import list_note_files  # markdown-it and YAML: see read_file

    files, walk_problems = list_note_files(paths.notes, follow_links)
    problems: list[Problem] = [
        dataclasses.replace(p, file=_printable_name(p.file)) for p in walk_problems
    ]
    named = []
    for f in files:
        rel = _rel(f, paths.notes)
        if _printable_name(rel) != rel:
            # SQLite, JSON and the terminal all need text: such a name cannot be stored.
            problems.append(
                Problem(
                    _printable_name(rel),
                    None,
                    "file name is not valid UTF-8 (rename it to read it)",
                )
            )
        else:
            named.append(f)
    files = named
    zotero = zotero_sources(paths.root, problems)
    if not files and not zotero:
        raise NotesError(f"no notes in {paths.notes}: add .md, .bib or .jsonl files")
    stats: list[FileStat] = []
    for f in files:
        rel = _rel(f, paths.notes)
        try:
            st = f.stat()
        except OSError as e:
            problems.append(Problem(rel, None, f"cannot read: {e.strerror or e}"))
            continue
        stats.append((f, rel, st.st_size, st.st_mtime_ns))
    config = load_config(paths.root)
    stats = [s for s in stats if config.included(s[1])]
    stats.extend(zotero)
    return _Scan(stats, problems, config)


class _ParseCache:
    """What the previous generation read: a file with the same size and mtime (and, with
    --verify, the same content) is not parsed again. Unusable after --full or when the
    readers changed (PARSER_VERSION)."""

    def __init__(
        self,
        previous: store.Index | None,
        scan: _Scan,
        pdf_cache: Path,
        *,
        full: bool,
        verify: bool,
    ):
        self.parser = parser_version()
        usable = (
            previous is not None and not full and previous.manifest.get("parser") == self.parser
        )
        self.previous = previous if usable else None
        self.files = previous.file_meta() if previous is not None and usable else {}
        self.config = scan.config
        self.pdf_cache = pdf_cache
        self.verify = verify
        # --verify: the content of every file, hashed now, must match what was parsed.
        self.hashes = {rel: _content_hash(f) for f, rel, _s, _m in scan.stats} if verify else {}
        # Files the up-to-date check already read again (see same_as_before).
        self.reread: dict[str, FileResult] = {}

    def fresh(self, rel: str, size: int, mtime: int) -> bool:
        """The cached parse of `rel` can be used: same size and mtime (the fast path), it did
        not fail as a whole, and with --verify, the same content."""
        c = self.files.get(rel)
        if c is None or (c.size, c.mtime_ns) != (size, mtime) or c.failed:
            return False
        return not self.verify or (c.sha256 is not None and self.hashes.get(rel) == c.sha256)

    def same_as_before(self, f: Path, rel: str, size: int, mtime: int) -> bool:
        """Fresh, or a file that failed as a whole and fails the same way: such a file is read
        again by every rebuild, since a chmod or a fix changes neither size nor mtime."""
        if self.fresh(rel, size, mtime):
            return True
        c = self.files.get(rel)
        if c is None or not c.failed or (c.size, c.mtime_ns) != (size, mtime):
            return False
        assert self.previous is not None
        result = self.reread[rel] = read_clean(f, rel, self.config.read_as(rel), self.pdf_cache)
        return (_records_to_json(result.records), _problems_to_json(result.problems)) == (
            self.previous.file_cache(rel)
        )

    def nothing_changed(self, scan: _Scan) -> bool:
        """The same files as last time, each the same and read the same way."""
        if self.previous is None or set(self.files) != {rel for _f, rel, _s, _m in scan.stats}:
            return False
        previous = self.previous
        return all(self.same_as_before(*st) for st in scan.stats) and all(
            previous.file_reading(rel).get("mode") == self.config.read_as(rel)
            for _f, rel, _s, _m in scan.stats
        )

    def digest(self, reading: FileReading, f: Path) -> str | None:
        """The sha256 to store for a file just read (or taken from the cache)."""
        if reading.from_cache and reading.rel in self.files:
            return self.files[reading.rel].sha256
        return self.hashes[reading.rel] if reading.rel in self.hashes else _content_hash(f)


def _unchanged_report(
    report: RebuildReport, cache: _ParseCache, problems: list[Problem], log: Log
) -> RebuildReport:
    """Nothing to do: the live generation stays, and the report repeats its counts and
    problems."""
    assert cache.previous is not None
    for probs_json in cache.previous.cached_problems():
        problems.extend(Problem(**p) for p in json.loads(probs_json))
    _report_problems(report, problems, log, cached=True)
    manifest = cache.previous.manifest
    report.nothing_changed = True
    report.papers = int(manifest.get("papers", 0))
    report.chunks = int(manifest.get("chunks", 0))
    report.papers_unchanged = report.papers
    report.chunks_unchanged = report.chunks
    return report


def _cache_readings(
    db: store.GenerationWriter,
    readings: list[FileReading],
    scan: _Scan,
    cache: _ParseCache,
    patch: _Patch | None,
) -> None:
    """Store every file's reading as the next rebuild's parse cache (a patch: the changed
    files', the rest are in the copy already)."""
    if patch is not None:
        db.delete_files(patch.changed)
    for r, (f, rel, size, mtime) in zip(readings, scan.stats, strict=True):
        if patch is not None and rel not in patch.changed:
            continue
        db.cache_file(
            {
                "path": rel,
                "size": size,
                "mtime_ns": mtime,
                "records": _records_to_json(r.final.records),
                "problems": _problems_to_json(r.final.problems),
                "sha256": cache.digest(r, f),
                "reading": json.dumps(_reading_row(r), ensure_ascii=False),
            }
        )


class _LazyRecords(Sequence[Record]):
    """A file's records, made only when first used (`count` of them): the records of a file
    read from the parse cache are decoded from JSON, its note links resolved, only if the
    rebuild needs them. An edit needs few files' records: in a library of one 100k-paper data
    file, decoding them was most of an edit's cost."""

    def __init__(self, make: Callable[[], list[Record]], count: int):
        self._make, self._count = make, count
        self._records: list[Record] | None = None

    def _all(self) -> list[Record]:
        if self._records is None:
            self._records = self._make()
        return self._records

    def __len__(self) -> int:
        return self._count if self._records is None else len(self._records)

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[Record]:
        return iter(self._all())


# Each file's records as merge sees them: (path under notes/, records), in reading order.
FileRecords = list[tuple[str, Sequence[Record]]]
# Where each record comes from, by id(record): (path under notes/, position in the file).
Origins = dict[int, tuple[str, int]]


def _final_records(
    readings: list[FileReading],
    problems: list[Problem],
    notes: Path,
    report: RebuildReport,
    log: Log,
) -> FileRecords:
    """Every file's records with note links resolved (notes_folder.final_records), and the
    problems met reading, reported."""
    problems.extend(final_problems(readings))
    _report_problems(report, problems, log)
    resolve = link_resolver([r.rel for r in readings])

    def resolved(records: Sequence[Record]) -> Sequence[Record]:
        return _LazyRecords(lambda: resolve_links(records, resolve), len(records))

    files = [(r.rel, resolved(r.final.records)) for r in readings]
    if not any(records for _rel, records in files):
        raise NotesError(f"no papers found in the notes under {notes}")
    return files


def _merge_files(files: FileRecords) -> tuple[list[Paper], Origins]:
    """Join every mention into papers (library.merge), remembering where each came from."""
    records = [r for _rel, recs in files for r in recs]
    where = {id(r): (rel, pos) for rel, recs in files for pos, r in enumerate(recs)}
    return merge(records), where


def _open_writer(
    tmp: Path, previous: store.Index | None, patch: _Patch | None
) -> store.GenerationWriter:
    """The new generation's SQLite file: empty, or for a patch a copy of the previous one."""
    if patch is None or previous is None:
        return store.GenerationWriter.create(tmp / store.DB_NAME)
    return store.GenerationWriter.copy_of(previous.gen, tmp / store.DB_NAME)


@dataclass
class _Built:
    """A generation's vectors, written last: the FAISS index, its IVF training size, the next
    free chunk id, and how many papers it holds."""

    index: Any
    trained_on: int | None
    next_vid: int
    papers: int


def _write_generation(
    db: store.GenerationWriter, tmp: Path, built: _Built, spec: ModelSpec, model: _ModelPlan
) -> None:
    """The manifest, which marks the SQLite file complete (the vector file is written)."""
    index = built.index
    db.write_manifest(
        {
            "model": spec.name,
            "model_path": str(spec.path),
            "model_stat_key": model.info.stat_key,
            **model.settings,
            "parser": parser_version(),
            "dim": int(index.d),
            "index_type": vectors.kind(index),
            "ivf_trained_on": built.trained_on,
            "papers": built.papers,
            "chunks": int(index.ntotal),
            "next_vid": built.next_vid,
            "faiss_bytes": (tmp / store.FAISS_NAME).stat().st_size,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "complete": True,
        },
    )
    db.commit()
    db.close()


def _publish(
    paths: Paths,
    tmp: Path,
    spec: ModelSpec,
    model: _ModelPlan,
    previous: store.Index | None,
    log: Log,
    pause: Pause,
) -> None:
    """Make sure questions have their fast encoder, and swap the new generation in atomically
    (store.publish)."""
    if not encoder_exported(paths.index, model.info, spec, log):
        model.info.encoder(paths.index, log)  # loading the model exports it (or warns once)
    store.publish(paths.index, tmp, pause)


def _reading_row(r: FileReading) -> dict[str, Any]:
    """What the files table keeps of a reading: how it was read (for `papers list --files`),
    and, when other files made it one paper, the reading on its own (for the next build)."""
    row: dict[str, Any] = {"mode": r.mode, "final": summary(r), "promoted": r.promoted is not None}
    if r.final is not r.base:
        row["base"] = result_to_json(r.base)
    else:
        row["reading"], row["reason"] = r.base.reading, r.base.reason
        row["entries"] = r.base.entries
    return row


def _read_with_cache(scan: _Scan, cache: _ParseCache, report: RebuildReport) -> list[FileReading]:
    """Every file's reading: unchanged files from the previous generation's cache, the rest
    parsed again (or taken from what the up-to-date check already read again)."""
    sizes = {rel: (size, mtime) for _f, rel, size, mtime in scan.stats}
    previous = cache.previous

    def unchanged(rel: str) -> dict[str, Any] | None:
        if previous is None or not cache.fresh(rel, *sizes[rel]):
            return None
        return previous.file_reading(rel) or None

    def from_columns(rel: str, row: dict[str, Any], count: Any) -> FileResult:
        assert previous is not None
        index = previous

        def load() -> list[Record]:
            return _records_from_json(index.file_cache(rel)[0])

        records = load() if not isinstance(count, int) else _LazyRecords(load, count)
        return FileResult(
            # read-only from here on: nothing appends to a cached file's records
            records=cast(list[Record], records),
            problems=[Problem(**p) for p in json.loads(previous.file_problems(rel))],
            reading=str(row.get("reading", "")),
            reason=str(row.get("reason", "")),
            entries=int(row.get("entries", 0)),
        )

    def cached(rel: str, mode: str) -> FileResult | None:
        row = unchanged(rel)
        if row is None or row.get("mode") != mode:
            return None
        if "base" in row:
            return result_from_json(row["base"])
        return from_columns(rel, row, (row.get("final") or {}).get("papers"))

    def cached_promoted(rel: str, mode: str) -> FileResult | None:
        row = unchanged(rel)
        if row is None or not row.get("promoted"):
            return None
        final = row.get("final") or {}
        return from_columns(
            rel,
            {"reading": final.get("reading"), "reason": final.get("reason")},
            final.get("papers"),
        )

    parsed: set[str] = set()

    def read(path: Path, rel: str, read_as: str) -> FileResult:
        if rel not in parsed:
            parsed.add(rel)
            report.files_parsed += 1
        earlier = cache.reread.pop(rel, None) if read_as == scan.config.read_as(rel) else None
        return earlier if earlier is not None else read_clean(path, rel, read_as, cache.pdf_cache)

    files = [(f, rel) for f, rel, _s, _m in scan.stats]
    return read_notes(files, scan.config, read, cached, cached_promoted)


# At most this many problems are printed by a rebuild; --json lists them all.
PROBLEMS_SHOWN = 20


def _report_problems(
    report: RebuildReport, problems: list[Problem], log: Log, cached: bool = False
) -> None:
    report.problems = [str(p) for p in problems]
    if cached:
        # Nothing changed: they were printed when their files were read.
        if problems:
            log(
                f"{len(problems)} problem(s) in the notes, as at the last rebuild "
                "(`papers rebuild --json` lists them)"
            )
        return
    for p in problems[:PROBLEMS_SHOWN]:
        log(f"skipped {p}")
    if len(problems) > PROBLEMS_SHOWN:
        log(
            f"... and {len(problems) - PROBLEMS_SHOWN} more problem(s) "
            "(`papers rebuild --json` lists them)"
        )


def _reason(changed: list[str], old: dict[str, Any], spec: ModelSpec) -> str:
    if "fingerprint" in changed:
        return f"the model changed ({old.get('model', '?')} → {spec.name})"
    return "settings that change the vectors changed: " + ", ".join(changed)


@dataclass
class _OldChunks:
    """The previous generation's chunks: by paper (text hash, vids in order) and by key."""

    by_paper: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    by_key: dict[str, list[int]] = field(default_factory=dict)
    # (title, normalised title) by paper id: normalise_title is slow (ftfy), so reuse it
    norm_titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # paper id -> pid
    total: int = 0

    @classmethod
    def read(cls, previous: store.Index, pids: set[int] | None = None) -> _OldChunks:
        """All papers' chunks, or those of `pids` only (a patch)."""
        out = cls()
        pid_to_id = {}
        papers_sql = "SELECT pid, id, text_hash, title, norm_title FROM papers"
        chunks_sql = "SELECT vid, key, pid FROM chunks"
        if pids is None:
            paper_rows = previous.query(papers_sql)
            chunk_rows = previous.query(chunks_sql + " ORDER BY pid, ord")
        else:
            paper_rows, chunk_rows = [], []
            wanted = sorted(pids)
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                marks = ",".join("?" * len(part))
                paper_rows += previous.query(f"{papers_sql} WHERE pid IN ({marks})", part)
                chunk_rows += previous.query(
                    f"{chunks_sql} WHERE pid IN ({marks}) ORDER BY pid, ord", part
                )
        for pid, pid_str, text_hash, title, norm in paper_rows:
            pid_to_id[pid] = (pid_str, text_hash)
            out.norm_titles[pid_str] = (title, norm)
            out.pids[pid_str] = pid
        grouped: dict[int, list[int]] = {}
        for vid, key, pid in chunk_rows:
            out.by_key.setdefault(key, []).append(vid)
            grouped.setdefault(pid, []).append(vid)
            out.total += 1
        for pid, (pid_str, text_hash) in pid_to_id.items():
            out.by_paper[pid_str] = (text_hash, grouped.get(pid, []))
        return out


def _build_generation(
    db: store.GenerationWriter,
    paths: Paths,
    model: _ModelPlan,
    previous: store.Index | None,
    papers: list[Paper],
    where: Origins,
    report: RebuildReport,
    log: Log,
    progress: Progress | None,
    pause: Pause,
) -> _Built:
    """Write papers and chunks into `db`, embedding only new chunk texts, in batches (memory
    grows with the batch, not the library).

    Without `model.reuse` (--full, another model or settings) every chunk is embedded again,
    but papers are still counted against `previous` so the report says what changed in the
    notes.
    """
    old = _OldChunks.read(previous) if previous is not None else _OldChunks()
    # The chunks whose vectors may be kept: none when everything is re-embedded.
    keep = old if model.reuse else _OldChunks()
    pids = list(range(1, len(papers) + 1))
    plan = _plan_papers(papers, old, model.reuse, report)
    _insert_papers(db, papers, pids, plan.digests, old.norm_titles, where)
    _plan_chunks(plan, papers, pids, keep, model.info, report, log)
    embedder = _Embedder(db, paths.index, model.info, log, progress, pause)
    if previous is not None and model.reuse:
        embedder.index = previous.vectors
    next_vid = int(previous.manifest.get("next_vid", 0)) if previous is not None else 0
    next_vid = embedder.embed(plan, papers, pids, next_vid)
    _count_chunks(report, plan, keep, old.total, embedder.embedded, model.reuse)
    if plan.kept:
        assert previous is not None
        db.carry_chunks_from(previous.gen, plan.kept)
    if embedder.index is None:
        raise NotesError("nothing to embed")
    gone = _unclaimed(keep, plan.claimed)
    if len(gone):
        embedder.index.remove_ids(gone)
    trained_on = previous.manifest.get("ivf_trained_on") if previous and model.reuse else None
    index, trained_on = vectors.finish(embedder.index, trained_on, log)
    return _Built(index, trained_on, next_vid, len(papers))


@dataclass
class _ChunkPlan:
    """Where each new paper's chunks come from: kept whole (same paper, same text), carried
    one by one from an old chunk with the same key, or embedded."""

    digests: list[str]  # text hash of each paper
    unchanged: list[list[int] | None]  # each paper's old vids, when all are kept as they are
    claimed: set[int] = field(default_factory=set)  # old vids the new generation uses
    kept: list[tuple[int, int, int]] = field(default_factory=list)  # (old vid, new pid, ord)
    fresh: dict[int, list[int]] = field(default_factory=dict)  # paper (index) -> ords to embed
    # (chunks embedded, old vids) of each changed paper: pairs "changed" chunks in the report
    changed_papers: list[tuple[int, list[int]]] = field(default_factory=list)
    to_embed: int = 0


def _plan_papers(
    papers: list[Paper], old: _OldChunks, reuse: bool, report: RebuildReport
) -> _ChunkPlan:
    """Unchanged papers (same id, same text) keep their vectors. They claim them first, so a
    changed paper reusing a chunk by key can never take a vector that is still in use."""
    plan = _ChunkPlan(digests=[], unchanged=[])
    for paper in papers:
        digest = paper_text(paper).digest()
        plan.digests.append(digest)
        before = old.by_paper.get(paper.id)
        same = before is not None and before[0] == digest
        if same and reuse and before is not None and before[1]:
            plan.unchanged.append(before[1])
            plan.claimed.update(before[1])
        else:
            plan.unchanged.append(None)
        if same:
            report.papers_unchanged += 1
        elif before is not None:
            report.papers_changed += 1
        else:
            report.papers_added += 1
    report.papers = len(papers)
    report.papers_removed = len(old.by_paper.keys() - {p.id for p in papers})
    return plan


def _plan_chunks(
    plan: _ChunkPlan,
    papers: list[Paper],
    pids: list[int],
    keep: _OldChunks,
    info: ModelInfo,
    report: RebuildReport,
    log: Log,
) -> None:
    """Chunk the changed papers; a chunk whose key (model + text) an unclaimed old chunk has
    takes that chunk's vector; the rest are to be embedded."""
    for at, (paper, vids) in enumerate(zip(papers, plan.unchanged, strict=True)):
        pid = pids[at]
        if vids is not None:
            plan.kept.extend((vid, pid, ord_) for ord_, vid in enumerate(vids))
            continue
        _report_cut(paper, report, log)
        ords: list[int] = []
        for ord_, (piece, _f, _page) in enumerate(_chunks_of(paper_text(paper), info)):
            key = chunk_key(info.fingerprint, piece)
            vid = next((v for v in keep.by_key.get(key, ()) if v not in plan.claimed), None)
            if vid is None:
                ords.append(ord_)
            else:
                plan.kept.append((vid, pid, ord_))
                plan.claimed.add(vid)
        if ords:
            plan.fresh[at] = ords
            plan.to_embed += len(ords)
        before = keep.by_paper.get(paper.id)
        if before is not None:
            plan.changed_papers.append((len(ords), before[1]))


# A chunk waiting for its vector: (vid, pid, ord, key, text, file, page)
_Pending = tuple[int, int, int, str, str, str | None, str | None]


class _Embedder:
    """Embeds the planned chunks a batch at a time, adding vectors and chunk rows as it goes
    (texts are chunked again rather than kept: memory grows with the batch, not with the
    library). The model is loaded only if something is to be embedded."""

    def __init__(
        self,
        db: store.GenerationWriter,
        index_dir: Path,
        info: ModelInfo,
        log: Log,
        progress: Progress | None,
        pause: Pause,
    ):
        self.db, self.index_dir, self.info, self.log = db, index_dir, info, log
        self.progress, self.pause = progress, pause
        self.index: Any = None  # the FAISS index vectors are added to (made on first use)
        self.encoder: Encoder | None = None
        self.embedded = 0
        self.pending: list[_Pending] = []
        self.tick: Callable[[int], None] | None = None

    def embed(self, plan: _ChunkPlan, papers: list[Paper], pids: list[int], next_vid: int) -> int:
        """Embed plan.fresh, numbering new chunks from `next_vid`; returns the next free vid."""
        self.tick = self.progress(plan.to_embed) if self.progress and plan.to_embed else None
        for at, ords in plan.fresh.items():
            pieces = _chunks_of(paper_text(papers[at]), self.info)
            for ord_ in ords:
                piece, file, page = pieces[ord_]
                key = chunk_key(self.info.fingerprint, piece)
                self.pending.append((next_vid, pids[at], ord_, key, piece, file, page))
                next_vid += 1
                if len(self.pending) >= EMBED_BATCH:
                    self.flush()
        if self.pending:
            self.flush()
        return next_vid

    def flush(self) -> None:
        if self.encoder is None:
            self.encoder = self.info.encoder(self.index_dir, self.log)
        if self.index is None:
            self.index = vectors.new_index(self.encoder.dim)
        pending, reported = self.pending, 0

        def advance(n: int) -> None:
            nonlocal reported
            reported += n
            if self.tick:
                self.tick(n)

        vecs = self.encoder.encode([p[4] for p in pending], progress=advance)
        vectors.update(
            self.index, np.zeros(0, np.int64), vecs, np.asarray([p[0] for p in pending], np.int64)
        )
        self.db.add_chunks(
            {"vid": vid, "key": key, "pid": pid, "ord": ord_, "text": t, "file": f, "page": pg}
            for vid, pid, ord_, key, t, f, pg in pending
        )
        first = self.embedded == 0
        self.embedded += len(pending)
        if self.tick and reported < len(pending):
            self.tick(len(pending) - reported)  # an encoder that does not report progress
        self.pending = []
        if first:
            self.pause("embedded")


def _count_chunks(
    report: RebuildReport,
    plan: _ChunkPlan,
    keep: _OldChunks,
    old_total: int,
    embedded: int,
    reuse: bool,
) -> None:
    """new = unchanged + changed + added; old = unchanged + changed + removed."""
    removed = keep.total - len(plan.claimed)
    changed = sum(
        min(n, sum(v not in plan.claimed for v in vids)) for n, vids in plan.changed_papers
    )
    report.chunks_unchanged = len(plan.kept)
    report.chunks_changed = changed
    report.chunks_added = embedded - changed
    # Re-embedding everything replaces every old chunk: the two sums above still hold.
    report.chunks_removed = removed - changed if reuse else old_total
    report.chunks_embedded = embedded
    report.chunks = len(plan.kept) + embedded


def _unclaimed(keep: _OldChunks, claimed: set[int]) -> np.ndarray:
    """The old chunks no new chunk uses: their vectors and rows go."""
    if keep.total - len(claimed) <= 0:
        return np.zeros(0, np.int64)
    return np.fromiter(
        (vid for vids in keep.by_key.values() for vid in vids if vid not in claimed),
        dtype=np.int64,
    )


# -- patching the previous generation --------------------------------------------------------------

# A patch re-merges the papers changed files touch; past this share of the library a whole
# rebuild writes about as much and is simpler.
PATCH_AT_MOST = 0.5


@dataclass
class _Patch:
    """A rebuild that updates a copy of the previous generation: only the papers records of
    changed files went into, or now join, are merged again; every other row stays as it is."""

    changed: set[str]  # files (paths under notes/) whose records changed, came or went
    affected: set[int]  # old pids merged again: their rows are replaced
    papers: list[Paper]  # what their records (old and new) merge into now
    where: Origins


def _plan_patch(
    previous: store.Index | None,
    model: _ModelPlan,
    cache: _ParseCache,
    readings: list[FileReading],
    files: FileRecords,
) -> _Patch | None:
    """What a patch would re-merge, or None when the whole library must be merged again (no
    usable previous generation, new vectors, or a change a patch cannot reproduce exactly).

    Mentions join by shared keys (library.merge_keys). A paper no changed file touches, and
    that no new record shares a key with, is the same component of the same records as
    before: only the others (`affected`) are merged again, from their records in unchanged
    files plus every record of the changed files, in the order a whole merge sees them."""
    if previous is None or not model.reuse or cache.previous is None:
        return None
    if not previous.has_tables(store.PATCH_TABLES):
        return None  # an index from before paper_records and merge_keys
    changed = _changed_files(previous, cache, readings)
    at = {rel: i for i, (rel, _recs) in enumerate(files)}
    new = [(at[rel], pos) for rel in changed if rel in at for pos in range(len(files[at[rel]][1]))]
    keys = {k for i, pos in new for k in merge_keys(files[i][1][pos])}
    affected = previous.pids_of_files(changed) | previous.pids_with_keys(keys)
    if len(affected) > PATCH_AT_MOST * int(previous.manifest.get("papers", 0)):
        return None
    old = [(at.get(f), pos) for f, pos in previous.records_of(affected) if f not in changed]
    if any(i is None or pos >= len(files[i][1]) for i, pos in old):
        return None  # the previous generation does not match its parse cache: merge all
    order = sorted({*new, *((i, pos) for i, pos in old if i is not None)})
    records = [files[i][1][pos] for i, pos in order]
    where = {id(files[i][1][pos]): (files[i][0], pos) for i, pos in order}
    papers = merge(records)
    if _ids_may_collide(previous, affected, papers):
        return None
    return _Patch(changed, affected, papers, where)


def _changed_files(
    previous: store.Index, cache: _ParseCache, readings: list[FileReading]
) -> set[str]:
    """Files whose records may differ from the previous generation's: parsed again, gone,
    read differently because of other files (promoted to one paper, trimmed), or holding a
    note link that resolves differently now that files came or went."""
    now = {r.rel for r in readings}
    before = set(cache.files)
    changed = before - now
    old_link = new_link = None
    if now != before:
        old_link, new_link = link_resolver(sorted(before)), link_resolver(sorted(now))
    for r in readings:
        row = json.loads(json.dumps(_reading_row(r), ensure_ascii=False))
        if not r.from_cache or r.final is not r.base or previous.file_reading(r.rel) != row:
            changed.add(r.rel)
        elif old_link is not None and new_link is not None:
            targets = (rec.extra.get("note_file") for rec in r.final.records)
            if any(t and old_link(t) != new_link(t) for t in targets):
                changed.add(r.rel)
    return changed


def _twin_base(paper: str) -> str | None:
    """ "x" for "x-2", "x-3"...: merge numbers papers that would share an id."""
    head, _, tail = paper.rpartition("-")
    return head if head and tail.isdigit() and int(tail) >= 2 else None


def _ids_may_collide(previous: store.Index, affected: set[int], papers: list[Paper]) -> bool:
    """merge numbers papers that would share an id (x, x-2...) in order of first mention,
    which a patch does not see: it gives way to a whole merge when an id it makes or drops
    could be such a twin of a kept paper's (rare: papers with no title key, arXiv id or DOI in
    common rarely share an id)."""
    if any(p.id != paper_id(p.records) for p in papers):
        return True  # twins among the papers merged again
    mine = {p.id for p in papers} | {row[1] for row in previous.pid_ids(affected)}
    mine |= {base for paper in mine if (base := _twin_base(paper))}
    for paper in mine:
        for pid, other in previous.ids_from(paper):
            if pid not in affected and (other == paper or _twin_base(other) == paper):
                return True
    return False


def _patch_generation(
    db: store.GenerationWriter,
    paths: Paths,
    model: _ModelPlan,
    previous: store.Index,
    patch: _Patch,
    report: RebuildReport,
    log: Log,
    progress: Progress | None,
    pause: Pause,
) -> _Built:
    """Update the copy of the previous generation in `db`: the affected papers' rows are
    replaced, their chunks kept, moved or embedded, and the vectors of chunks gone removed;
    every other row stays as it is."""
    old = _OldChunks.read(previous, patch.affected)
    pids = _patch_pids(previous, patch.papers, old)
    plan = _plan_papers(patch.papers, old, True, report)
    db.delete_papers(patch.affected)
    _insert_papers(db, patch.papers, pids, plan.digests, old.norm_titles, patch.where, fresh=False)
    _plan_chunks(plan, patch.papers, pids, old, model.info, report, log)
    embedder = _Embedder(db, paths.index, model.info, log, progress, pause)
    embedder.index = previous.vectors
    next_vid = embedder.embed(plan, patch.papers, pids, int(previous.manifest.get("next_vid", 0)))
    _count_chunks(report, plan, old, old.total, embedder.embedded, True)
    _count_untouched(report, previous, old)
    db.move_chunks(plan.kept)
    gone = _unclaimed(old, plan.claimed)
    db.delete_chunks(int(v) for v in gone)
    if len(gone):
        embedder.index.remove_ids(gone)
    trained_on = previous.manifest.get("ivf_trained_on")
    index, trained_on = vectors.finish(embedder.index, trained_on, log)
    return _Built(index, trained_on, next_vid, report.papers)


def _patch_pids(previous: store.Index, papers: list[Paper], old: _OldChunks) -> list[int]:
    """A paper that keeps its id keeps its pid (and its place in `papers list`); new papers
    are numbered after every old one."""
    next_pid = int(previous.query("SELECT coalesce(max(pid), 0) FROM papers")[0][0]) + 1
    pids = []
    for p in papers:
        if p.id in old.pids:
            pids.append(old.pids[p.id])
        else:
            pids.append(next_pid)
            next_pid += 1
    return pids


def _count_untouched(report: RebuildReport, previous: store.Index, old: _OldChunks) -> None:
    """The papers and chunks a patch did not look at are unchanged."""
    papers = int(previous.manifest.get("papers", 0)) - len(old.by_paper)
    chunks = int(previous.manifest.get("chunks", 0)) - old.total
    report.papers += papers
    report.papers_unchanged += papers
    report.chunks += chunks
    report.chunks_unchanged += chunks


def _report_cut(paper: Paper, report: RebuildReport, log: Log) -> None:
    """Say so when a paper's text is longer than what is embedded (said when it is chunked)."""
    length = full_length(paper)
    if length <= MAX_EMBED_CHARS:
        return
    first = paper.records[0]
    problem = Problem(
        first.file,
        first.line,
        f'"{paper.title}": its text is {length:,} characters; only the first '
        f"{MAX_EMBED_CHARS:,} are embedded and keyword-indexed",
    )
    report.problems.append(str(problem))
    log(f"cut {problem}")


def _insert_papers(
    db: store.GenerationWriter,
    papers: list[Paper],
    pids: list[int],
    digests: list[str],
    old_norm: dict[str, tuple[str, str]],
    where: Origins,
    *,
    fresh: bool = True,
) -> None:
    """Every row of these papers (pids given): the paper, its aliases, sources, keywords,
    where its records came from and the keys they join by. `fresh`: a new keyword table."""

    def norm(p: Paper) -> str:
        before = old_norm.get(p.id)
        return (
            before[1] if before is not None and before[0] == p.title else normalise_title(p.title)
        )

    db.add_papers(
        {
            "pid": pid,
            "id": p.id,
            "title": p.title,
            "norm_title": norm(p),
            "section": json.dumps(p.section, ensure_ascii=False),
            "arxiv": p.arxiv,
            "doi": p.doi,
            "url": p.url,
            "authors": json.dumps(p.authors, ensure_ascii=False),
            "year": p.year,
            "venue": p.venue,
            "tags": json.dumps(p.tags, ensure_ascii=False),
            "abstract": p.abstract,
            "notes": json.dumps(p.notes, ensure_ascii=False),
            "text_hash": digest,
        }
        for pid, p, digest in zip(pids, papers, digests, strict=True)
    )
    db.add_aliases(
        {"pid": pid, "alias": alias, "norm": normalise_title(alias)}
        for pid, p in zip(pids, papers, strict=True)
        for alias in p.aliases
    )
    db.add_sources(
        {
            "pid": pid,
            "ord": i,
            "file": r.file,
            "line": r.line,
            "section": json.dumps(r.section, ensure_ascii=False),
            "note": r.note,
        }
        for pid, p in zip(pids, papers, strict=True)
        for i, r in enumerate(p.records)
    )
    db.add_keywords(
        keyword_rows((pid, p, paper_text(p)) for pid, p in zip(pids, papers, strict=True)),
        fresh=fresh,
    )
    db.add_paper_records(
        (*where[id(r)], pid) for pid, p in zip(pids, papers, strict=True) for r in p.records
    )
    db.add_merge_keys(
        (key, pid)
        for pid, p in zip(pids, papers, strict=True)
        for key in dict.fromkeys(k for r in p.records for k in merge_keys(r))
    )


def _chunks_of(text: PaperText, info: ModelInfo) -> list[tuple[str, str | None, str | None]]:
    return chunk_pages(text, info.spans, info.max_tokens, info.document_prompt)
