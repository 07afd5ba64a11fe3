"""The index on disk: generations of (SQLite + FAISS) swapped in atomically through CURRENT.

index/
  CURRENT            name of the live generation, replaced atomically (os.replace)
  gen-<n>/index.sqlite   papers, sources, chunks, keyword index, files cache, the map, manifest
  gen-<n>/vectors.faiss  vectors keyed by chunk id
  gen-<n>/checksums.json size and CRC-32 of both files, written last before publishing
  encoders/<fingerprint>/  the encoder exported for fast queries
  rebuild.lock

A rebuild writes a whole new generation in a temporary folder, then renames it and replaces
CURRENT: a rebuild killed at any moment leaves the previous generation live and whole. Nothing
here is loaded with pickle: SQLite, JSON and FAISS's own binary format only.

Damage is caught when a generation is opened: a missing or unreadable CURRENT, checksums.json
or manifest, or a file whose size differs from checksums.json. The CRC-32 of both files is
also checked whenever a rebuild opens the previous generation (so a rebuild never carries
corrupt rows or vectors forward and always recovers), and on every open when the files
together are at most VERIFY_ON_OPEN_BYTES (16 MB: ~10 ms at zlib.crc32's ~1.6 GB/s here, a
small part of a query; larger indexes are checked by size on open, fully by every rebuild).
`PRAGMA quick_check` was not used: it costs about as much as the CRC, and misses garbage
inside row contents, which the CRC catches.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import IndexDamaged, IndexMissing, PapersError, damaged
from search.readers.zotero import is_zotero_source
from search.storage import vectors

# 2: chunks.file and chunks.page (the PDF page a chunk comes from).
SCHEMA_VERSION = 2
CURRENT = "CURRENT"
DB_NAME = "index.sqlite"
FAISS_NAME = "vectors.faiss"
CHECKSUMS = "checksums.json"
FILES = (DB_NAME, FAISS_NAME)
VERIFY_ON_OPEN_BYTES = 16 * 1024 * 1024

SCHEMA = """
CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, records TEXT, problems TEXT,
    sha256 TEXT, reading TEXT, ctime_ns INTEGER, inode INTEGER
);
CREATE TABLE papers (
    pid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, title TEXT NOT NULL, norm_title TEXT,
    section TEXT, arxiv TEXT, doi TEXT, url TEXT, authors TEXT, year INTEGER, venue TEXT,
    tags TEXT, abstract TEXT, notes TEXT, text_hash TEXT
);
CREATE INDEX papers_arxiv ON papers(arxiv);
CREATE INDEX papers_doi ON papers(doi);
CREATE TABLE sources (
    pid INTEGER NOT NULL, ord INTEGER NOT NULL, file TEXT NOT NULL, line INTEGER, section TEXT,
    note TEXT, PRIMARY KEY (pid, ord)
);
CREATE INDEX sources_file ON sources(file);
CREATE TABLE aliases (pid INTEGER NOT NULL, alias TEXT NOT NULL, norm TEXT NOT NULL);
CREATE TABLE chunks (
    vid INTEGER PRIMARY KEY, key TEXT NOT NULL, pid INTEGER NOT NULL, ord INTEGER NOT NULL,
    text TEXT NOT NULL, file TEXT, page TEXT
);
CREATE INDEX chunks_pid ON chunks(pid);
CREATE INDEX chunks_key ON chunks(key);
CREATE TABLE paper_records (
    file TEXT NOT NULL, pos INTEGER NOT NULL, pid INTEGER NOT NULL, PRIMARY KEY (file, pos)
);
CREATE INDEX paper_records_pid ON paper_records(pid);
CREATE TABLE merge_keys (key TEXT NOT NULL, pid INTEGER NOT NULL);
CREATE INDEX merge_keys_key ON merge_keys(key);
CREATE INDEX merge_keys_pid ON merge_keys(pid);
"""
# The library's map (search/storage/map.py): each paper's position and cluster, and the text hash it
# was placed with; map_info holds the rest (layout, scale, clusters and their labels) as JSON
# under the key "map". In the generation's own file, so that an edit updates only the rows of
# the papers it changed (a 100k-paper map.json was 25 MB to read and write again), and so that
# the map is covered by the checksum. IF NOT EXISTS: a copy of a generation made before the
# map moved here gets the tables when its map is written.
MAP_SCHEMA = """
CREATE TABLE IF NOT EXISTS map_points (
    pid INTEGER PRIMARY KEY, x REAL NOT NULL, y REAL NOT NULL, cluster INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS map_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# paper_records: which paper each record of each file (path under notes/, position among the
# file's records) went into; merge_keys: the keys its records join by (library.merge_keys).
# With them a rebuild re-merges only the papers a changed file touches (build.py); an index
# built before they existed is rebuilt whole once.
PATCH_TABLES = ("paper_records", "merge_keys")


@dataclass
class PaperRow:
    """A paper as stored in the index."""

    pid: int
    id: str
    title: str
    section: list[str]
    arxiv: str | None
    doi: str | None
    url: str | None
    authors: list[str]
    year: int | None
    venue: str | None
    tags: list[str]
    abstract: str
    notes: list[str]
    sources: list[tuple[str, int | None]] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # other names: "ResNeXt"

    @property
    def where(self) -> str:
        """notes/file:line of the first mention (relative to the library folder)."""
        return self.places[0] if self.places else ""

    @property
    def places(self) -> list[str]:
        """notes/file:line of every mention."""
        return [f"{place(f)}:{line}" if line else place(f) for f, line in self.sources]


def place(file: str) -> str:
    """Where a source file is, for the user: notes/<file>, or a Zotero item as it is."""
    return file if is_zotero_source(file) else f"notes/{file}"


@dataclass(frozen=True)
class CachedFile:
    """One note file in the parse cache: its size, mtime and content hash when it was read
    (sha256 None if it could not be read), and whether it failed as a whole (no records,
    only problems), in which case it is read again by every rebuild."""

    size: int
    mtime_ns: int
    sha256: str | None
    failed: bool
    # None in indexes built before they were kept (and for the Zotero library's stat key).
    ctime_ns: int | None = None
    inode: int | None = None


_PAPER_COLS = (
    "pid, id, title, section, arxiv, doi, url, authors, year, venue, tags, abstract, notes"
)


def _paper_row(row: tuple[Any, ...]) -> PaperRow:
    return PaperRow(
        pid=row[0],
        id=row[1],
        title=row[2],
        section=json.loads(row[3] or "[]"),
        arxiv=row[4],
        doi=row[5],
        url=row[6],
        authors=json.loads(row[7] or "[]"),
        year=row[8],
        venue=row[9],
        tags=json.loads(row[10] or "[]"),
        abstract=row[11] or "",
        notes=json.loads(row[12] or "[]"),
    )


def file_checksum(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            crc = zlib.crc32(block, crc)
    return crc


def current_generation(index_dir: Path) -> Path | None:
    """The live generation folder, or None when nothing was ever built."""
    check_index_dir(index_dir)
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise damaged("index/CURRENT cannot be read") from None
    # A name no generation can have (file names stop at 255 bytes) is damage, not an OSError.
    if (
        not name.startswith("gen-")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name == "gen-"
        or len(name.encode("utf-8", "replace")) > 255
    ):
        raise damaged("index/CURRENT does not name a generation")
    gen = index_dir / name
    try:
        found = gen.is_dir()
    except OSError:
        found = False
    if not found:
        raise damaged(f"index/CURRENT names {name}, which is missing")
    return gen


def check_index_dir(index_dir: Path) -> None:
    """index/ that is not a folder (a file of the user's, say) is named, never replaced."""
    if index_dir.exists() and not index_dir.is_dir():
        raise PapersError(
            f"{index_dir} is a file, not a folder: papers keeps its index there; move the "
            "file away and run `papers rebuild`"
        )


class Index:
    """A read-only view of one generation."""

    def __init__(self, gen: Path, db: sqlite3.Connection, manifest: dict[str, Any]):
        self.gen = gen
        self.db = db
        self.manifest = manifest
        self._vectors: Any = None

    @classmethod
    def open(cls, index_dir: Path, verify: bool | None = None) -> Index:
        """Open the live generation; IndexMissing if none, IndexDamaged if it is not whole.

        `verify`: check the CRC-32 of both files (None: only when they are small)."""
        gen = current_generation(index_dir)
        if gen is None:
            if any(index_dir.glob("gen-*")):
                raise damaged("index/CURRENT is missing")
            raise IndexMissing("no index yet: run `papers rebuild` first")
        return cls.open_generation(gen, verify)

    @classmethod
    def open_generation(cls, gen: Path, verify: bool | None = None) -> Index:
        check_files(gen, verify)
        path = gen / DB_NAME
        try:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.DatabaseError as e:
            raise damaged(f"{gen.name}/{DB_NAME} cannot be opened: {e}") from None
        try:
            rows = db.execute("SELECT key, value FROM manifest").fetchall()
            manifest = {k: json.loads(v) for k, v in rows}
        except (sqlite3.DatabaseError, ValueError) as e:
            db.close()
            raise damaged(f"{gen.name}/{DB_NAME} is not a readable index: {e}") from None
        if manifest.get("schema_version") != SCHEMA_VERSION or not manifest.get("complete"):
            db.close()
            raise damaged(f"{gen.name} has no complete manifest")
        return cls(gen, db, manifest)

    def close(self) -> None:
        self.db.close()

    # -- vectors ---------------------------------------------------------------------------
    @property
    def vectors(self) -> Any:
        if self._vectors is None:
            self._vectors = vectors.read(
                self.gen / FAISS_NAME,
                self.manifest.get("faiss_bytes"),
                self.manifest.get("chunks"),
            )
        return self._vectors

    # -- reads -----------------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise damaged(f"{self.gen.name}/{DB_NAME}: {e}") from None

    def papers(self, pids: list[int]) -> dict[int, PaperRow]:
        """Papers by pid, with their sources."""
        out: dict[int, PaperRow] = {}
        for i in range(0, len(pids), 500):
            part = pids[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in self.query(f"SELECT {_PAPER_COLS} FROM papers WHERE pid IN ({marks})", part):
                out[row[0]] = _paper_row(row)
            for pid, f, line in self.query(
                f"SELECT pid, file, line FROM sources WHERE pid IN ({marks}) ORDER BY pid, ord",
                part,
            ):
                if pid in out:
                    out[pid].sources.append((f, line))
            if self._has_aliases():
                for pid, alias in self.query(
                    f"SELECT pid, alias FROM aliases WHERE pid IN ({marks})", part
                ):
                    if pid in out:
                        out[pid].aliases.append(alias)
        return out

    def _has_aliases(self) -> bool:
        """Indexes built before aliases were kept have no such table."""
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE name = 'aliases'"))

    def all_papers(self) -> list[PaperRow]:
        pids = [r[0] for r in self.query("SELECT pid FROM papers ORDER BY pid")]
        found = self.papers(pids)
        return [found[p] for p in pids]

    def chunk_pids(self, vids: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for i in range(0, len(vids), 500):
            part = vids[i : i + 500]
            marks = ",".join("?" * len(part))
            out.update(self.query(f"SELECT vid, pid FROM chunks WHERE vid IN ({marks})", part))
        return out

    def page_chunks(self, pids: list[int]) -> dict[int, list[tuple[int, str, str, str]]]:
        """pid -> (vid, file, page label, text) of each of its chunks that come from a page."""
        out: dict[int, list[tuple[int, str, str, str]]] = {}
        for i in range(0, len(pids), 500):
            part = pids[i : i + 500]
            marks = ",".join("?" * len(part))
            for vid, pid, f, page, text in self.query(
                f"SELECT vid, pid, file, page, text FROM chunks WHERE file IS NOT NULL "
                f"AND pid IN ({marks}) ORDER BY pid, ord",
                part,
            ):
                out.setdefault(pid, []).append((vid, f, page or "", text))
        return out

    def paper_vids(self, pid: int) -> list[int]:
        return [r[0] for r in self.query("SELECT vid FROM chunks WHERE pid=? ORDER BY ord", (pid,))]

    def titles(self) -> list[tuple[int, str, str, str | None, str | None, str]]:
        """(pid, title, id, arxiv, doi, normalised title) of every paper, for lookups by name."""
        return self.query("SELECT pid, title, id, arxiv, doi, norm_title FROM papers ORDER BY pid")

    def file_meta(self) -> dict[str, CachedFile]:
        """What the parse cache knows of every note file read by the build of this generation."""
        columns = {r[1] for r in self.query("PRAGMA table_info(files)")}
        sha = "sha256" if "sha256" in columns else "NULL"  # indexes built before it was kept
        ids = "ctime_ns, inode" if "inode" in columns else "NULL, NULL"
        return {
            r[0]: CachedFile(r[1], r[2], r[3], bool(r[4]), r[5], r[6])
            for r in self.query(
                f"SELECT path, size, mtime_ns, {sha}, records = '[]' AND problems != '[]', "
                f"{ids} FROM files"
            )
        }

    def aliases(self) -> dict[int, list[tuple[str, str]]]:
        """pid -> [(alias, normalised alias)]: other names papers go by ("ResNeXt")."""
        try:
            rows = self.query("SELECT pid, alias, norm FROM aliases")
        except sqlite3.OperationalError:  # an index built before aliases were kept
            return {}
        out: dict[int, list[tuple[str, str]]] = {}
        for pid, alias, norm in rows:
            out.setdefault(pid, []).append((alias, norm))
        return out

    def file_cache(self, path: str) -> tuple[str, str]:
        """The cached parse of one note file: (records json, problems json)."""
        rows = self.query("SELECT records, problems FROM files WHERE path = ?", (path,))
        if not rows:
            raise damaged(f"{self.gen.name}/{DB_NAME}: no cached parse of {path}")
        return rows[0][0], rows[0][1]

    def file_problems(self, path: str) -> str:
        """The cached problems (json) of one note file."""
        rows = self.query("SELECT problems FROM files WHERE path = ?", (path,))
        if not rows:
            raise damaged(f"{self.gen.name}/{DB_NAME}: no cached parse of {path}")
        return str(rows[0][0])

    def file_reading(self, path: str) -> dict[str, Any]:
        """How one note file was read (see readers.folder.FileReading), or {} if not stored."""
        rows = self.query("SELECT reading FROM files WHERE path = ?", (path,))
        return json.loads(rows[0][0] or "{}") if rows else {}

    def file_readings(self) -> list[dict[str, Any]]:
        """How every note file was read: file, reading, reason, papers (path order).

        Raises:
            IndexDamaged: the index predates stored readings (a rebuild adds them)."""
        try:
            rows = self.query("SELECT path, reading FROM files ORDER BY path")
        except sqlite3.OperationalError:
            raise IndexMissing(
                "this index does not record how files were read: run `papers rebuild`"
            ) from None
        out = []
        for path, reading in rows:
            final = json.loads(reading or "{}").get("final") or {}
            out.append({"file": path, **{k: v for k, v in final.items() if k != "file"}})
        return out

    def has_tables(self, names: Iterable[str]) -> bool:
        wanted = set(names)
        found = {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")}
        return wanted <= found

    def pids_of_files(self, files: Iterable[str]) -> set[int]:
        """Papers that records of these files (paths under notes/) went into."""
        return self._pids_where("SELECT pid FROM paper_records WHERE file IN ({})", files)

    def pids_with_keys(self, keys: Iterable[str]) -> set[int]:
        """Papers with a record that joins by one of these merge keys."""
        return self._pids_where("SELECT pid FROM merge_keys WHERE key IN ({})", keys)

    def records_of(self, pids: Iterable[int]) -> list[tuple[str, int]]:
        """(file, position) of every record of these papers."""
        out: list[tuple[str, int]] = []
        for part in _parts(list(pids)):
            marks = ",".join("?" * len(part))
            out += self.query(f"SELECT file, pos FROM paper_records WHERE pid IN ({marks})", part)
        return out

    def pid_ids(self, pids: Iterable[int]) -> list[tuple[int, str]]:
        """(pid, id) of these papers."""
        out: list[tuple[int, str]] = []
        for part in _parts(list(pids)):
            marks = ",".join("?" * len(part))
            out += self.query(f"SELECT pid, id FROM papers WHERE pid IN ({marks})", part)
        return out

    def ids_from(self, paper: str) -> list[tuple[int, str]]:
        """(pid, id) of the paper with id `paper` and of those with ids `paper`-... (through
        the index on papers.id: "." sorts right after "-")."""
        return self.query(
            "SELECT pid, id FROM papers WHERE id = ? OR (id > ? AND id < ?)",
            (paper, paper + "-", paper + "."),
        )

    def _pids_where(self, sql: str, values: Iterable[Any]) -> set[int]:
        out: set[int] = set()
        for part in _parts(list(values)):
            out.update(r[0] for r in self.query(sql.format(",".join("?" * len(part))), part))
        return out

    # -- the map (storage/map.py) ------------------------------------------------------------------
    def map_info(self) -> dict[str, Any] | None:
        """The stored map's layout and clusters, or None when this generation has no map in
        its tables (none made, or one from before the map was kept here: map.json)."""
        if not self.has_tables(["map_info"]):
            return None
        rows = self.query("SELECT value FROM map_info WHERE key = 'map'")
        return json.loads(rows[0][0]) if rows else None

    def map_points(self) -> list[tuple[str, str, str, float, float, int, str]]:
        """(id, title, section json, x, y, cluster, hash) of every mapped paper, in pid order."""
        return self.query(
            "SELECT p.id, p.title, p.section, m.x, m.y, m.cluster, m.hash "
            "FROM map_points m JOIN papers p ON p.pid = m.pid ORDER BY m.pid"
        )

    def map_rows(self) -> list[tuple[int, float, float, int, int]]:
        """(pid, x, y, cluster, current) of every row of the map, in pid order; current is 0
        when its paper is gone or has another text than the one it was placed with."""
        return self.query(
            "SELECT m.pid, m.x, m.y, m.cluster, "
            "p.pid IS NOT NULL AND m.hash IS coalesce(p.text_hash, '') "
            "FROM map_points m LEFT JOIN papers p ON p.pid = m.pid ORDER BY m.pid"
        )

    def map_unplaced(self) -> list[tuple[int, str]]:
        """(pid, text hash) of papers the map has no row for, or a row placed with another
        text, in pid order."""
        return self.query(
            "SELECT p.pid, coalesce(p.text_hash, '') FROM papers p "
            "LEFT JOIN map_points m ON m.pid = p.pid "
            "WHERE m.pid IS NULL OR m.hash IS NOT coalesce(p.text_hash, '') ORDER BY p.pid"
        )

    def chunk_papers(self) -> dict[int, int]:
        """vid -> pid of every chunk."""
        return dict(self.query("SELECT vid, pid FROM chunks"))

    def cached_problems(self) -> list[str]:
        """Problems json of every file that had some."""
        return [r[0] for r in self.query("SELECT problems FROM files WHERE problems != '[]'")]


def _parts(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """`values` in slices small enough for one SQL statement's parameters."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def check_files(gen: Path, verify: bool | None) -> None:
    """IndexDamaged unless both files of `gen` have the size (and, if verified, the CRC-32)
    recorded in its checksums.json."""
    try:
        sums = json.loads((gen / CHECKSUMS).read_text(encoding="utf-8"))
        expected = {name: (int(sums[name]["bytes"]), int(sums[name]["crc32"])) for name in FILES}
    except FileNotFoundError:
        raise damaged(f"{gen.name}/{CHECKSUMS} is missing") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise damaged(f"{gen.name}/{CHECKSUMS} cannot be read") from None
    total = 0
    for name, (size, _crc) in expected.items():
        try:
            actual = (gen / name).stat().st_size
        except OSError:
            raise damaged(f"{gen.name}/{name} is missing") from None
        if actual != size:
            raise damaged(f"{gen.name}/{name} has {actual} bytes, expected {size}")
        total += size
    if verify is None:
        verify = total <= VERIFY_ON_OPEN_BYTES
    if verify:
        for name, (_size, crc) in expected.items():
            if file_checksum(gen / name) != crc:
                raise damaged(f"{gen.name}/{name} does not match its checksum")


# -- writing ---------------------------------------------------------------------------------


def new_generation_dir(index_dir: Path) -> Path:
    """A fresh temporary folder inside index/ for a generation being built."""
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f"tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    return tmp


def open_for_writing(path: Path) -> sqlite3.Connection:
    """A generation's SQLite file (new, or a copy of the previous one) opened to be written."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")  # the whole file is thrown away if a build fails
    db.execute("PRAGMA synchronous=OFF")
    return db


def create_db(path: Path) -> sqlite3.Connection:
    db = open_for_writing(path)
    db.executescript(SCHEMA + MAP_SCHEMA)
    return db


def write_manifest(db: sqlite3.Connection, manifest: dict[str, Any]) -> None:
    manifest = {**manifest, "schema_version": SCHEMA_VERSION}
    db.executemany(
        "INSERT OR REPLACE INTO manifest(key, value) VALUES (?, ?)",
        [(k, json.dumps(v)) for k, v in manifest.items()],
    )


_PAPER_COLUMNS = (
    "pid, id, title, norm_title, section, arxiv, doi, url, authors, year, venue, tags, abstract, "
    "notes, text_hash"
)
_CHUNK_COLUMNS = "vid, key, pid, ord, text, file, page"


class GenerationWriter:
    """Writes one generation's SQLite file: the only code that writes rows into an index.

    Rows come in as mappings from column name to value (JSON columns already encoded), so the
    schema above is named in one place."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    @classmethod
    def create(cls, path: Path) -> GenerationWriter:
        return cls(create_db(path))

    @classmethod
    def copy_of(cls, previous: Path, path: Path) -> GenerationWriter:
        """A generation that starts as a copy of the SQLite file of the generation folder
        `previous`, to be updated in place: rows of papers no note change touched are kept as
        they are (the copy is a new file: the live generation is never written)."""
        shutil.copyfile(previous / DB_NAME, path)
        # Synced now rather than at publish, when only the rows changed since are left to
        # write: the disk takes the copy while the rest of the rebuild computes (the map's
        # background import among it, map.warm_up), not while it waits.
        _fsync_file(path)
        db = open_for_writing(path)
        columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
        for column in ("ctime_ns", "inode"):
            if column not in columns:  # a generation written before they were kept
                db.execute(f"ALTER TABLE files ADD COLUMN {column} INTEGER")
        return cls(db)

    def delete_papers(self, pids: Iterable[int]) -> None:
        """Remove papers with their sources, aliases, keyword rows, records and merge keys
        (their chunks go with delete_chunks / move_chunks)."""
        pids = list(pids)
        for table, column in (
            ("papers", "pid"),
            ("sources", "pid"),
            ("aliases", "pid"),
            ("papers_fts", "rowid"),
            ("paper_records", "pid"),
            ("merge_keys", "pid"),
        ):
            for part in _parts(pids):
                marks = ",".join("?" * len(part))
                self.db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", part)

    def delete_files(self, paths: Iterable[str]) -> None:
        """Drop files from the parse cache (changed or gone)."""
        self.db.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))

    def delete_chunks(self, vids: Iterable[int]) -> None:
        self.db.executemany("DELETE FROM chunks WHERE vid = ?", ((v,) for v in vids))

    def move_chunks(self, kept: Iterable[tuple[int, int, int]]) -> None:
        """Give kept chunks (vid, new pid, new ord) their place in the new generation."""
        self.db.executemany(
            "UPDATE chunks SET pid = ?, ord = ? WHERE vid = ?",
            ((pid, ord_, vid) for vid, pid, ord_ in kept),
        )

    def add_paper_records(self, rows: Iterable[tuple[str, int, int]]) -> None:
        """Rows of (file, pos, pid): the paper each record went into."""
        self.db.executemany("INSERT INTO paper_records (file, pos, pid) VALUES (?, ?, ?)", rows)

    def add_merge_keys(self, rows: Iterable[tuple[str, int]]) -> None:
        """Rows of (key, pid)."""
        self.db.executemany("INSERT INTO merge_keys (key, pid) VALUES (?, ?)", rows)

    def cache_file(self, row: dict[str, Any]) -> None:
        """One notes file's parse cache: path, size, mtime_ns, ctime_ns, inode, records,
        problems, sha256, reading."""
        self.db.execute(
            "INSERT INTO files (path, size, mtime_ns, ctime_ns, inode, records, problems, "
            "sha256, reading) VALUES (:path, :size, :mtime_ns, :ctime_ns, :inode, :records, "
            ":problems, :sha256, :reading)",
            {"ctime_ns": None, "inode": None, **row},
        )

    def add_papers(self, rows: Iterable[dict[str, Any]]) -> None:
        placeholders = ", ".join(f":{c.strip()}" for c in _PAPER_COLUMNS.split(","))
        self.db.executemany(f"INSERT INTO papers ({_PAPER_COLUMNS}) VALUES ({placeholders})", rows)

    def add_aliases(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows of pid, alias, norm."""
        self.db.executemany(
            "INSERT INTO aliases (pid, alias, norm) VALUES (:pid, :alias, :norm)", rows
        )

    def add_sources(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows of pid, ord, file, line, section, note."""
        self.db.executemany(
            "INSERT INTO sources (pid, ord, file, line, section, note) "
            "VALUES (:pid, :ord, :file, :line, :section, :note)",
            rows,
        )

    def add_keywords(self, rows: Iterable[tuple[int, str, str]], *, fresh: bool = True) -> None:
        """The FTS5 keyword table's rows, one per paper: (pid, title, body). `fresh`: (re)create
        the table first (else add to the one a copied generation has)."""
        if fresh:
            self.db.execute("DROP TABLE IF EXISTS papers_fts")
            self.db.execute(
                "CREATE VIRTUAL TABLE papers_fts USING fts5("
                "title, body, tokenize='porter unicode61 remove_diacritics 2')"
            )
        self.db.executemany("INSERT INTO papers_fts(rowid, title, body) VALUES (?, ?, ?)", rows)

    def add_chunks(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows of vid, key, pid, ord, text, file, page."""
        self.db.executemany(
            f"INSERT INTO chunks ({_CHUNK_COLUMNS}) "
            "VALUES (:vid, :key, :pid, :ord, :text, :file, :page)",
            rows,
        )

    def carry_chunks_from(self, previous: Path, kept: Iterable[tuple[int, int, int]]) -> None:
        """Copy chunk rows (vid, new pid, new ord) from the generation folder `previous`."""
        self.db.commit()
        self.db.execute("ATTACH DATABASE ? AS old", (f"{previous / DB_NAME}",))
        self.db.executemany(
            f"INSERT INTO chunks ({_CHUNK_COLUMNS}) "
            "SELECT vid, key, ?, ?, text, file, page FROM old.chunks WHERE vid = ?",
            ((pid, ord_, vid) for vid, pid, ord_ in kept),
        )
        self.db.commit()
        self.db.execute("DETACH DATABASE old")

    def view(self, gen: Path, index: Any) -> Index:
        """A read-only view of the generation being written (its rows so far), with its vectors
        `index` still in memory: for a step that reads what the build wrote (the map)."""
        view = Index(gen, self.db, {})
        view._vectors = index
        return view

    def replace_map(self, rows: Iterable[tuple[int, float, float, int, str]], info: Any) -> None:
        """The whole map: rows of (pid, x, y, cluster, hash), and its info (JSON-able)."""
        self.db.executescript(MAP_SCHEMA)
        self.db.execute("DELETE FROM map_points")
        self.patch_map([], rows, info)

    def patch_map(
        self,
        gone: Iterable[int],
        rows: Iterable[tuple[int, float, float, int, str]],
        info: Any,
    ) -> None:
        """Drop the map rows of papers `gone` (pids), add `rows`, and replace the info."""
        self.db.executemany("DELETE FROM map_points WHERE pid = ?", ((p,) for p in gone))
        self.db.executemany(
            "INSERT OR REPLACE INTO map_points (pid, x, y, cluster, hash) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        self.db.execute(
            "INSERT OR REPLACE INTO map_info (key, value) VALUES ('map', ?)",
            (json.dumps(info, ensure_ascii=False),),
        )

    def clear_map(self) -> None:
        """No map in this generation (one could not be made)."""
        self.db.executescript(MAP_SCHEMA)
        self.db.execute("DELETE FROM map_points")
        self.db.execute("DELETE FROM map_info")

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_manifest(self.db, manifest)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def no_pause(stage: str) -> None:
    """The default for a rebuild's `pause` callback (tests stop a rebuild at a stage): a
    rebuild runs straight through."""


def publish(index_dir: Path, tmp: Path, pause: Callable[[str], None] = no_pause) -> Path:
    """Make the generation built in `tmp` the live one, atomically; returns its folder.

    Order: both files synced, then their checksums written and synced, then the folder renamed
    to gen-<n>, then CURRENT replaced. A crash anywhere leaves CURRENT naming a whole
    generation (the old one until the last step)."""
    sums = {}
    for name in FILES:
        _fsync_file(tmp / name)
        sums[name] = {"bytes": (tmp / name).stat().st_size, "crc32": file_checksum(tmp / name)}
    (tmp / CHECKSUMS).write_text(json.dumps(sums), encoding="utf-8")
    _fsync_file(tmp / CHECKSUMS)
    _fsync_dir(tmp)
    pause("synced")
    gen = index_dir / f"gen-{time.time_ns():020d}"
    os.rename(tmp, gen)
    _fsync_dir(index_dir)
    pause("renamed")
    pointer = index_dir / f"{CURRENT}.tmp-{os.getpid()}"
    pointer.write_text(gen.name + "\n", encoding="utf-8")
    with open(pointer, "rb") as fh:
        os.fsync(fh.fileno())
    current = index_dir / CURRENT
    if current.is_dir() and not current.is_symlink():
        # papers never makes this folder, and os.replace cannot replace it: without this,
        # every rebuild would fail the same way.
        shutil.rmtree(current)
    os.replace(pointer, current)
    _fsync_dir(index_dir)
    return gen


def prune(index_dir: Path, keep: int = 2) -> None:
    """Delete stale temporary folders and all but the newest `keep` generations.

    The previous generation is kept so that a query that opened it just before the swap can
    finish. Call only while holding the rebuild lock.
    """
    try:
        live = current_generation(index_dir)
    except IndexDamaged:
        live = None
    for tmp in index_dir.glob("tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for tmp in index_dir.glob(f"{CURRENT}.tmp-*"):
        tmp.unlink(missing_ok=True)
    gens = sorted(index_dir.glob("gen-*"))
    for old in gens[:-keep]:
        if old != live:
            shutil.rmtree(old, ignore_errors=True)
