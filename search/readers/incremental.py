"""Reading notes/ for a rebuild, parsing only what changed.

A rebuild lists and stats every note file papers.toml includes (`scan_notes`); a file whose size
and mtime (and, with --verify, content) match the previous generation's parse cache is not read
again (`ParseCache`): its reading comes from the cache, its records decoded only if the rebuild
needs them (`LazyRecords`). The rest are parsed by the readers (`read_file`). Every reading is
stored back as the next rebuild's cache (`cache_readings`). Nothing here embeds or merges.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from search.errors import NotesError
from search.library import Paper, Paths, merge
from search.readers.config import Config, load_config
from search.readers.folder import (
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
from search.readers.importers import read_note_data
from search.readers.pdfs import read_pdf_file
from search.readers.records import (
    SURROGATE,
    SURROGATE_MESSAGE,
    FileResult,
    Problem,
    Record,
    scrub_record,
    summarise_problems,
)
from search.readers.zotero import is_zotero_source, read_zotero, zotero_sources
from search.storage import store

Log = Callable[[str], None]


def read_file(
    path: Path, rel: str, read_as: str = "auto", pdf_cache: Path | None = None
) -> FileResult:
    """Read one file under notes/ (or the Zotero library, see search.readers.zotero) by its kind;
    never raises for bad content. `read_as` ("auto", "list", "paper") is how a Markdown note
    is read (papers.toml, links). PDF text is cached by content hash in `pdf_cache`."""
    if is_zotero_source(rel):
        return read_zotero(path, pdf_cache)
    if is_lfs_pointer(path):
        why = "a Git LFS pointer, not the file itself (run `git lfs pull`)"
        return FileResult(problems=[Problem(rel, None, why)], reading="skipped", reason=why)
    if path.suffix.lower() == ".pdf":
        return read_pdf_file(path, rel, pdf_cache)
    if path.suffix.lower() in (".bib", ".jsonl"):
        result = read_note_data(path, rel)
        n = len(result.records)
        result.reading = result.reading or f"data: {n} record{'s' if n != 1 else ''}"
        return result
    # search.readers.markdown loads markdown-it, PyYAML and python-frontmatter: only reading
    # notes needs them
    from search.readers.markdown import read_markdown_file

    return read_markdown_file(path, rel, read_as)


# A repository cloned without `git lfs pull` holds these small text files in place of its PDFs
# (and sometimes notes): three lines that would otherwise be indexed as a paper's text.
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def is_lfs_pointer(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False  # the reader reports what cannot be read


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
    from search.readers.markdown import list_note_files  # markdown-it and YAML: see read_file

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


def records_to_json(records: list[Record]) -> str:
    # dataclasses.asdict deep-copies every list and dict: a fifth of a 1M-bullet rebuild.
    return json.dumps(
        [{k: getattr(r, k) for k in _RECORD_FIELDS} for r in records], ensure_ascii=False
    )


def records_from_json(text: str) -> list[Record]:
    return [Record(**d) for d in json.loads(text)]


def problems_to_json(problems: list[Problem]) -> str:
    return json.dumps([dataclasses.asdict(p) for p in problems])


def content_hash(path: Path) -> str | None:
    """sha256 of a note file's bytes, kept in the parse cache; None if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


# The parse cache is valid only for the code that produced it: bump this whenever a reader
# (readers/markdown/, readers/folder.py, importers.py, records.py, pdfs.py, zotero.py) changes
# what it returns for a file.
PARSER_VERSION = "notes-4"

# Text extracted from PDFs, by content hash (index/pdf-cache/<sha256>.json): outlives
# generations, since a PDF's text does not depend on anything else.
PDF_CACHE = "pdf-cache"


def parser_version() -> str:
    return PARSER_VERSION


# A file the rebuild reads: (path, path under notes/, size, mtime_ns).
FileStat = tuple[Path, str, int, int]


@dataclass
class Scan:
    """Every file a rebuild reads, in order, with the problems met listing them and the
    papers.toml that chose them."""

    stats: list[FileStat]
    problems: list[Problem]
    config: Config
    # rel -> (ctime_ns, inode) of each note file: with size and mtime, the parse cache's key.
    ids: dict[str, tuple[int, int]] = field(default_factory=dict)


def scan_notes(paths: Paths, follow_links: bool) -> Scan:
    """List and stat the note files papers.toml includes: size and mtime decide which files
    are parsed again. The Zotero library named in papers.toml is one more "file": its stat key
    covers the database, its -wal and the attachment files, so an unchanged library is not
    read."""
    from search.readers.markdown import list_note_files  # markdown-it and YAML: see read_file

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
    ids: dict[str, tuple[int, int]] = {}
    for f in files:
        rel = _rel(f, paths.notes)
        try:
            st = f.stat()
        except OSError as e:
            problems.append(Problem(rel, None, f"cannot read: {e.strerror or e}"))
            continue
        stats.append((f, rel, st.st_size, st.st_mtime_ns))
        ids[rel] = (st.st_ctime_ns, st.st_ino)
    config = load_config(paths.root)
    stats = [s for s in stats if config.included(s[1])]
    stats.extend(zotero)
    return Scan(stats, problems, config, ids)


class ParseCache:
    """What the previous generation read: a file with the same size and mtime (and, with
    --verify, the same content) is not parsed again. Unusable after --full or when the
    readers changed (PARSER_VERSION)."""

    def __init__(
        self,
        previous: store.Index | None,
        scan: Scan,
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
        self.ids = scan.ids
        self.pdf_cache = pdf_cache
        self.verify = verify
        # --verify: the content of every file, hashed now, must match what was parsed.
        self.hashes = {rel: content_hash(f) for f, rel, _s, _m in scan.stats} if verify else {}
        # Files the up-to-date check already read again (see same_as_before).
        self.reread: dict[str, FileResult] = {}
        self.paths = {rel: f for f, rel, _s, _m in scan.stats}

    def _same_content(self, rel: str, sha256: str | None) -> bool:
        """The file's bytes hash to `sha256` (hashed once per rebuild)."""
        if sha256 is None or rel not in self.paths:
            return False
        if rel not in self.hashes:
            self.hashes[rel] = content_hash(self.paths[rel])
        return self.hashes[rel] == sha256

    def fresh(self, rel: str, size: int, mtime: int) -> bool:
        """The cached parse of `rel` can be used: same size, mtime, ctime and inode (the fast
        path), it did not fail as a whole, and with --verify, the same content.

        ctime and inode catch what size and mtime miss (git's racy-index rule): an edit of the
        same size whose mtime was put back (`touch -r`, an editor or sync tool keeping times)
        still moves ctime, which no program can set; a file replaced by another moves the
        inode. When they moved but size and mtime did not, the content decides, as git
        re-hashes such a file: a copy or a restore of the library (every ctime and inode new)
        costs a hash of each file, not a parse, and an edit with its mtime put back is seen."""
        c = self.files.get(rel)
        if c is None or (c.size, c.mtime_ns) != (size, mtime) or c.failed:
            return False
        if c.ctime_ns is not None and (c.ctime_ns, c.inode) != self.ids.get(rel, (None, None)):
            return self._same_content(rel, c.sha256)
        return not self.verify or (c.sha256 is not None and self.hashes.get(rel) == c.sha256)

    def same_as_before(self, f: Path, rel: str, size: int, mtime: int) -> bool:
        """Fresh, or a file that failed as a whole and fails the same way: such a file is read
        again by every rebuild, since a chmod or a fix changes neither size nor mtime."""
        if self.fresh(rel, size, mtime):
            return True
        c = self.files.get(rel)
        if c is None or not c.failed or (c.size, c.mtime_ns) != (size, mtime):
            return False
        if c.ctime_ns is not None and (c.ctime_ns, c.inode) != self.ids.get(rel, (None, None)):
            return False
        assert self.previous is not None
        result = self.reread[rel] = read_clean(f, rel, self.config.read_as(rel), self.pdf_cache)
        return (records_to_json(result.records), problems_to_json(result.problems)) == (
            self.previous.file_cache(rel)
        )

    def nothing_changed(self, scan: Scan) -> bool:
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
        return self.hashes[reading.rel] if reading.rel in self.hashes else content_hash(f)


def cache_readings(
    db: store.GenerationWriter,
    readings: list[FileReading],
    scan: Scan,
    cache: ParseCache,
    changed: set[str] | None,
) -> None:
    """Store every file's reading as the next rebuild's parse cache (for a patch, only the
    `changed` files': the rest are in the copy already)."""
    if changed is not None:
        db.delete_files(changed)
    for r, (f, rel, size, mtime) in zip(readings, scan.stats, strict=True):
        if changed is not None and rel not in changed:
            continue
        ctime, inode = scan.ids.get(rel, (None, None))
        db.cache_file(
            {
                "path": rel,
                "size": size,
                "mtime_ns": mtime,
                "ctime_ns": ctime,
                "inode": inode,
                "records": records_to_json(r.final.records),
                "problems": problems_to_json(r.final.problems),
                "sha256": cache.digest(r, f),
                "reading": json.dumps(reading_row(r), ensure_ascii=False),
            }
        )


class LazyRecords(Sequence[Record]):
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


def records_by_file(
    readings: list[FileReading],
    problems: list[Problem],
) -> FileRecords:
    """Every file's records with note links resolved (readers.folder.final_records); the
    problems met reading them are added to `problems`."""
    problems.extend(final_problems(readings))
    resolve = link_resolver([r.rel for r in readings])

    def resolved(records: Sequence[Record]) -> Sequence[Record]:
        return LazyRecords(lambda: resolve_links(records, resolve), len(records))

    return [(r.rel, resolved(r.final.records)) for r in readings]


def merge_files(files: FileRecords) -> tuple[list[Paper], Origins]:
    """Join every mention into papers (library.merge), remembering where each came from."""
    records = [r for _rel, recs in files for r in recs]
    where = {id(r): (rel, pos) for rel, recs in files for pos, r in enumerate(recs)}
    return merge(records), where


def reading_row(r: FileReading) -> dict[str, Any]:
    """What the files table keeps of a reading: how it was read (for `papers list --files`),
    and, when other files made it one paper, the reading on its own (for the next build)."""
    row: dict[str, Any] = {"mode": r.mode, "final": summary(r), "promoted": r.promoted is not None}
    if r.final is not r.base:
        row["base"] = result_to_json(r.base)
    else:
        row["reading"], row["reason"] = r.base.reading, r.base.reason
        row["entries"] = r.base.entries
        row["unsure"] = r.base.unsure
    return row


# A file that held at least this many papers and now holds under half of them is named in the
# rebuild's summary: an edit that changes how a file is read must not drop papers unseen.
SHRUNK_FROM = 4


def report_shrunk(previous: store.Index | None, readings: list[FileReading], log: Log) -> list[str]:
    """Name each file parsed again whose papers fell to under half of what it held (logged,
    and returned as lines)."""
    shrunk: list[str] = []
    if previous is None:
        return shrunk
    for r in readings:
        if r.from_cache:
            continue
        try:
            before = int((previous.file_reading(r.rel).get("final") or {}).get("papers", 0))
        except (sqlite3.Error, ValueError, TypeError):
            return shrunk  # an index without stored readings: nothing to compare with
        after = len(r.final.records)
        if before >= SHRUNK_FROM and 2 * after < before:
            line = (
                f"{r.rel}: {after} paper{'s' if after != 1 else ''} now, {before} before "
                f"(read as {r.final.reading}: {r.final.reason}; `papers list --files` shows "
                "how each file is read, papers.toml can set it)"
            )
            shrunk.append(line)
            log(line)
    return shrunk


def read_with_cache(scan: Scan, cache: ParseCache) -> tuple[list[FileReading], int]:
    """Every file's reading: unchanged files from the previous generation's cache, the rest
    parsed again (or taken from what the up-to-date check already read again); and how many
    files were parsed."""
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
            return records_from_json(index.file_cache(rel)[0])

        records = load() if not isinstance(count, int) else LazyRecords(load, count)
        return FileResult(
            # read-only from here on: nothing appends to a cached file's records
            records=cast(list[Record], records),
            problems=[Problem(**p) for p in json.loads(previous.file_problems(rel))],
            reading=str(row.get("reading", "")),
            reason=str(row.get("reason", "")),
            entries=int(row.get("entries", 0)),
            unsure=str(row.get("unsure", "")),
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
            {
                "reading": final.get("reading"),
                "reason": final.get("reason"),
                "unsure": final.get("unsure", ""),
            },
            final.get("papers"),
        )

    parsed: set[str] = set()

    def read(path: Path, rel: str, read_as: str) -> FileResult:
        if rel not in parsed:
            parsed.add(rel)
        earlier = cache.reread.pop(rel, None) if read_as == scan.config.read_as(rel) else None
        return earlier if earlier is not None else read_clean(path, rel, read_as, cache.pdf_cache)

    files = [(f, rel) for f, rel, _s, _m in scan.stats]
    return read_notes(files, scan.config, read, cached, cached_promoted), len(parsed)


# At most this many problems are printed by a rebuild; --json lists them all.
PROBLEMS_SHOWN = 20


def report_problems(problems: list[Problem], log: Log, cached: bool = False) -> list[str]:
    """Log the problems met (the first PROBLEMS_SHOWN), and return them all as lines."""
    if cached:
        # Nothing changed: they were printed when their files were read.
        if problems:
            log(
                f"{len(problems)} problem(s) in the notes, as at the last rebuild "
                "(`papers rebuild --json` lists them)"
            )
        return [str(p) for p in problems]
    for p in problems[:PROBLEMS_SHOWN]:
        log(f"skipped {p}")
    if len(problems) > PROBLEMS_SHOWN:
        log(
            f"... and {len(problems) - PROBLEMS_SHOWN} more problem(s) "
            "(`papers rebuild --json` lists them)"
        )
    return [str(p) for p in problems]
