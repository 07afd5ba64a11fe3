"""The catalog: papers you have not noted (an arXiv snapshot, an OpenAlex export, a BEIR corpus),
kept apart from notes/ and embedded once.

Layout, under the library root (see README, "The catalog"):

    catalog/
      catalog.sqlite                 one row per paper (title, abstract, date, categories, ids),
                                     the files added, and a version counter
      embeddings/<fingerprint>/      derived, deletable: vectors of one model
        shards/shard-<id>.npz        (hashes int64, vectors float16, the precision the model
                                     ran in): what one embedding batch produced; written
                                     whole (tmp + rename), never changed
        merged/                      every catalog paper's vector in one float16 matrix
                                     (memory-mapped), cids.npy, meta.json, and above
                                     ann.ANN_MIN vectors an IVF-PQ index (search/catalog/ann.py)

Why here and not in notes/ or index/: the catalog is not what you wrote (so `list`, `show` and a
plain `ask` never see it), and it is too costly to be disposable like index/ (embedding 2.7M
abstracts takes hours on a laptop). Its rows are parsed copies of the files you added, so a
4.5 GB snapshot need not stay where it was; its embeddings are keyed by the model's
fingerprint and each text's hash, so adding next month's snapshot embeds only new or changed
abstracts, and another model gets its own folder.

Files are streamed line by line: memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.catalog import ann
from search.catalog.sources import (
    CatalogPaper,
    Filters,
    SourceRow,
    paper_key,
    read_source,
    text_hash,
    text_of,
)
from search.encoders.encoder import prompts_of, read_model_config, resolve_model
from search.encoders.index_encoder import indexed_model, open_encoder
from search.encoders.query_encoder import encoder_dir
from search.errors import CatalogError, DiskFull, IndexMissing, disk_full_error, human_bytes
from search.library import Paths
from search.query import check_model
from search.readers.records import normalise_title
from search.storage.store import Index

CATALOG_DIR = "catalog"
DB_NAME = "catalog.sqlite"
EMBEDDINGS = "embeddings"
SCHEMA_VERSION = 1
# Rows written per SQLite transaction while adding a file.
ADD_BATCH = 2000
# Texts per shard: a killed embedding run loses at most one shard's work per worker.
SHARD_SIZE = 2048

Log = Callable[[str], None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS papers (
    cid INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, title TEXT NOT NULL,
    norm_title TEXT NOT NULL, abstract TEXT NOT NULL, authors TEXT, date TEXT, year INTEGER,
    categories TEXT, arxiv TEXT, doi TEXT, url TEXT, source TEXT, text_hash INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS papers_norm ON papers(norm_title);
CREATE INDEX IF NOT EXISTS papers_arxiv ON papers(arxiv);
CREATE INDEX IF NOT EXISTS papers_doi ON papers(doi);
CREATE INDEX IF NOT EXISTS papers_date ON papers(date);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, filters TEXT, papers INTEGER
);
"""


def catalog_dir(paths: Paths) -> Path:
    return paths.root / CATALOG_DIR


def _raise_if_disk_full(e: BaseException, folder: Path, doing: str) -> None:
    """A full disk says so (as a rebuild does), with the space left; anything else returns."""

    if not disk_full_error(e):
        return
    try:
        free = f"{human_bytes(shutil.disk_usage(folder).free)} free on the disk holding {folder}"
    except OSError:
        free = f"free space on the disk holding {folder} unknown"
    raise DiskFull(
        f"catalog add failed, the disk is full: {doing} {folder / DB_NAME} ({e}); the catalog "
        f"keeps what was added before this file; {free}"
    ) from None


# --------------------------------------------------------------------------------------------
# The catalog database
# --------------------------------------------------------------------------------------------


@dataclass
class AddReport:
    """What `catalog add` did, per file and in all."""

    files: list[dict[str, Any]] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": self.problems,
            "total": self.total,
        }


_COLS = "cid, key, title, abstract, authors, date, year, categories, arxiv, doi, url, source"


def _row_paper(row: tuple[Any, ...]) -> CatalogPaper:
    return CatalogPaper(
        cid=row[0],
        key=row[1],
        title=row[2],
        abstract=row[3],
        authors=json.loads(row[4] or "[]"),
        date=row[5],
        year=row[6],
        categories=(row[7] or "").split(),
        arxiv=row[8],
        doi=row[9],
        url=row[10],
        source=row[11] or "",
    )


class Catalog:
    """The catalog database of one library."""

    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder = folder
        self.db = db

    @classmethod
    def open(cls, folder: Path, create: bool = False) -> Catalog:
        path = folder / DB_NAME
        if not path.is_file():
            if not create:
                raise CatalogError(
                    "the catalog is empty: add papers with `papers catalog add FILE`"
                )
            folder.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(str(path))
            db.executescript(SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as e:
            _raise_if_disk_full(e, folder, "creating")
            raise CatalogError(
                f"{path} is damaged ({e}); delete it and add the files again"
            ) from None
        if found is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT INTO meta VALUES ('version', '0')")
            db.commit()
        elif found[0] != str(SCHEMA_VERSION):
            raise CatalogError(
                f"{path} has schema {found[0]}, this program reads {SCHEMA_VERSION}: "
                "delete it and add the files again"
            )
        return cls(folder, db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: Any) -> None:
        """Close; a database found damaged while in use (SQLite reads pages as it needs them,
        so opening proves little) is one error naming the file."""
        self.close()
        if isinstance(e, sqlite3.DatabaseError) and getattr(e, "sqlite_errorname", "") in (
            "SQLITE_CORRUPT",
            "SQLITE_NOTADB",
        ):
            raise CatalogError(
                f"{self.folder / DB_NAME} is damaged ({e}); delete it and add the files again"
            ) from None

    @property
    def version(self) -> int:
        """Goes up whenever papers are added or changed: embeddings merged at another
        version are stale."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    # -- adding ------------------------------------------------------------------------------
    def add_files(
        self,
        files: Iterable[Path],
        filters: Filters = Filters(),  # noqa: B008 - a frozen dataclass
        log: Log = lambda s: None,
    ) -> AddReport:
        """Stream each file into the catalog; a paper seen before (same arXiv id, DOI or
        title) is updated in place, keeping its vector when its text is unchanged."""
        try:
            return self._add_files(files, filters, log)
        except (OSError, sqlite3.Error) as e:
            self.db.rollback()
            _raise_if_disk_full(e, self.folder, "adding to")
            raise

    def _add_files(self, files: Iterable[Path], filters: Filters, log: Log) -> AddReport:
        report = AddReport()
        for path in files:
            if not path.is_file():
                raise CatalogError(f"{path} is not a file")
            log(f"reading {path.name}…")
            counts = {"added": 0, "updated": 0, "unchanged": 0}
            batch: list[SourceRow] = []
            for row in read_source(path, filters, report.problems):
                batch.append(row)
                if len(batch) >= ADD_BATCH:
                    self._upsert(batch, counts)
                    batch.clear()
            if batch:
                self._upsert(batch, counts)
            st = path.stat()
            self.db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                (
                    str(path.resolve()),
                    st.st_size,
                    st.st_mtime_ns,
                    json.dumps(filters.to_json()),
                    sum(counts.values()),
                ),
            )
            if counts["added"] or counts["updated"]:
                self.db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'"
                )
            self.db.commit()
            report.files.append({"file": str(path), **counts})
            for k, v in counts.items():
                setattr(report, k, getattr(report, k) + v)
        report.total = self.count()
        return report

    def _upsert(self, rows: list[SourceRow], counts: dict[str, int]) -> None:
        prepared = []
        for row in rows:
            r = row.record
            prepared.append(
                (
                    paper_key(r),
                    r.title,
                    normalise_title(r.title),
                    r.abstract,
                    json.dumps(r.authors, ensure_ascii=False),
                    row.date,
                    r.year or (int(row.date[:4]) if row.date else None),
                    " ".join(r.tags),
                    r.arxiv,
                    r.doi,
                    r.url,
                    r.extra.get("source", ""),
                    text_hash(text_of(r.title, r.abstract)),
                )
            )
        keys = [p[0] for p in prepared]
        before: dict[str, int] = {}
        for s in range(0, len(keys), 500):
            part = keys[s : s + 500]
            marks = ",".join("?" * len(part))
            before.update(
                self.db.execute(
                    f"SELECT key, text_hash FROM papers WHERE key IN ({marks})", part
                ).fetchall()
            )
        seen: dict[str, int] = {}
        for p in prepared:
            old = seen.get(p[0], before.get(p[0]))
            if old is None:
                counts["added"] += 1
            elif old != p[-1]:
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
            seen[p[0]] = p[-1]
        self.db.executemany(
            "INSERT INTO papers (key, title, norm_title, abstract, authors, date, year, "
            "categories, arxiv, doi, url, source, text_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET title = excluded.title, "
            "norm_title = excluded.norm_title, abstract = excluded.abstract, "
            "authors = excluded.authors, date = coalesce(excluded.date, date), "
            "year = coalesce(excluded.year, year), "
            "categories = excluded.categories, arxiv = excluded.arxiv, doi = excluded.doi, "
            "url = excluded.url, source = excluded.source, text_hash = excluded.text_hash",
            prepared,
        )

    # -- reading -----------------------------------------------------------------------------
    def papers(self, cids: list[int]) -> dict[int, CatalogPaper]:
        out: dict[int, CatalogPaper] = {}
        for s in range(0, len(cids), 500):
            part = [int(c) for c in cids[s : s + 500]]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                f"SELECT {_COLS} FROM papers WHERE cid IN ({marks})", part
            ).fetchall():
                out[row[0]] = _row_paper(row)
        return out

    def hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """(cids, text hashes) of every paper, in cid order."""
        cids, hashes = [], []
        cur = self.db.execute("SELECT cid, text_hash FROM papers ORDER BY cid")
        while True:
            rows = cur.fetchmany(100_000)
            if not rows:
                break
            arr = np.asarray(rows, dtype=np.int64)
            cids.append(arr[:, 0])
            hashes.append(arr[:, 1])
        if not cids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(cids), np.concatenate(hashes)

    def texts(self, cids: Iterable[int]) -> Iterator[tuple[int, str]]:
        """(cid, text to embed) of the given papers, in the order given."""
        batch: list[int] = []
        for cid in cids:
            batch.append(int(cid))
            if len(batch) == 500:
                yield from self._texts(batch)
                batch = []
        if batch:
            yield from self._texts(batch)

    def _texts(self, cids: list[int]) -> list[tuple[int, str]]:
        marks = ",".join("?" * len(cids))
        got = {
            cid: text_of(t, a)
            for cid, t, a in self.db.execute(
                f"SELECT cid, title, abstract FROM papers WHERE cid IN ({marks})", cids
            )
        }
        return [(c, got[c]) for c in cids if c in got]

    def dates(self, since: str) -> np.ndarray:
        """cids of papers published on or after `since` (undated: a later year)."""
        rows = self.db.execute(
            "SELECT cid FROM papers WHERE (date IS NOT NULL AND date >= ?) "
            "OR (date IS NULL AND year > ?)",
            (since, int(since[:4])),
        ).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def matching(
        self, arxiv: Iterable[str], dois: Iterable[str], norm_titles: Iterable[str]
    ) -> set[int]:
        """cids of catalog papers that are the same paper as any of these ids or titles."""
        out: set[int] = set()
        for column, values in (("arxiv", arxiv), ("doi", dois), ("norm_title", norm_titles)):
            vals = sorted({v for v in values if v})
            for s in range(0, len(vals), 500):
                part = vals[s : s + 500]
                marks = ",".join("?" * len(part))
                out.update(
                    r[0]
                    for r in self.db.execute(
                        f"SELECT cid FROM papers WHERE {column} IN ({marks})", part
                    )
                )
        return out

    def summary(self) -> dict[str, Any]:
        """What is in the catalog: counts, date range, sources, top categories, files."""
        db = self.db
        total = self.count()
        lo, hi = db.execute("SELECT min(date), max(date) FROM papers").fetchone()
        sources = dict(
            db.execute("SELECT source, count(*) FROM papers GROUP BY source ORDER BY 2 DESC")
        )
        cats: dict[str, int] = {}
        for (text,) in db.execute("SELECT categories FROM papers WHERE categories != ''"):
            for c in text.split():
                cats[c] = cats.get(c, 0) + 1
        top = sorted(cats.items(), key=lambda x: -x[1])[:10]
        files = [
            {"file": p, "papers": n, "filters": json.loads(f or "{}")}
            for p, n, f in db.execute("SELECT path, papers, filters FROM files ORDER BY path")
        ]
        with_abstract = int(
            db.execute("SELECT count(*) FROM papers WHERE abstract != ''").fetchone()[0]
        )
        return {
            "papers": total,
            "with_abstract": with_abstract,
            "first_date": lo,
            "last_date": hi,
            "sources": sources,
            "top_categories": dict(top),
            "files": files,
            "version": self.version,
        }


# --------------------------------------------------------------------------------------------
# Embeddings: shards keyed by text hash, merged into one matrix aligned with the catalog
# --------------------------------------------------------------------------------------------


def _atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shard_name(hashes: np.ndarray) -> str:
    """A shard's name comes from what it holds: a resumed run rewriting a shard it already
    finished overwrites it with the same bytes instead of adding a duplicate."""
    return "shard-" + hashlib.blake2b(hashes.tobytes(), digest_size=8).hexdigest() + ".npz"


def write_shard(
    folder: Path, hashes: np.ndarray, vecs: np.ndarray, precision: str = "fp32"
) -> Path:
    """Write one finished batch of vectors (float16, unit rows) keyed by text hash, with the
    precision the model ran in (fp32, int8, fp16, bf16: search/catalog/embed_stages.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    hashes = np.ascontiguousarray(hashes, dtype=np.int64)
    path = folder / shard_name(hashes)
    _atomic_npz(
        path,
        hashes=hashes,
        vectors=np.asarray(vecs, dtype=np.float16),
        precision=np.asarray(precision),
    )
    return path


# What numpy raises for a file cut short or overwritten (a zip without its directory, an array
# with fewer bytes than its header says, a header that is not one).
_DAMAGE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def _damaged(path: Path, e: BaseException, fix: str) -> CatalogError:
    why = getattr(e, "strerror", None) or str(e).split("\n")[0] or type(e).__name__
    return CatalogError(f"{path} is damaged ({why}): {fix}")


def shard_precision(path: Path) -> str:
    """The precision a shard's vectors were made in; shards written before shards said were
    all fp32 (ONNX fp32 or sentence-transformers fp32)."""
    with np.load(path, allow_pickle=False) as data:
        return str(data["precision"]) if "precision" in data.files else "fp32"


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A shard's text hashes and vectors; CatalogError naming the file when it is damaged."""
    try:
        # Our own handle: numpy leaves its own open when the zip is damaged.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            hashes, vecs = np.asarray(data["hashes"]), np.asarray(data["vectors"])
    except _DAMAGE as e:
        raise _damaged(
            path, e, "run `papers catalog embed`, which drops it and embeds its papers again"
        ) from None
    if hashes.ndim != 1 or vecs.ndim != 2 or len(hashes) != len(vecs):
        raise CatalogError(
            f"{path} is damaged (its arrays do not match): run `papers catalog embed`, which "
            "drops it and embeds its papers again"
        )
    return hashes, vecs


@dataclass
class Merged:
    """Every embedded catalog paper's vector: rows of `vectors` (float16, memory-mapped)
    belong to `cids`, ascending."""

    folder: Path
    cids: np.ndarray
    vectors: np.ndarray
    meta: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows_of(self, cids: np.ndarray) -> np.ndarray:
        """Row of each cid (which must be merged)."""
        return np.searchsorted(self.cids, cids)


class Embeddings:
    """The embeddings of one model: shards, and the matrix merged from them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.shards = folder / "shards"
        self.merged_dir = folder / "merged"

    @classmethod
    def of(cls, paths: Paths, fingerprint: str) -> Embeddings:
        return cls(catalog_dir(paths) / EMBEDDINGS / fingerprint)

    def shard_files(self) -> list[Path]:
        return sorted(self.shards.glob("shard-*.npz")) if self.shards.is_dir() else []

    def drop_damaged_shards(self, log: Log = lambda s: None) -> int:
        """Delete every shard that cannot be read whole (a disk error, a copy cut short), so
        that its papers count as not embedded and are embedded again; how many."""
        dropped = 0
        for path in self.shard_files():
            try:
                read_shard(path)
            except CatalogError as e:
                log(f"{str(e).split(': run')[0]}: dropped, its papers are embedded again")
                path.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def precisions(self) -> set[str]:
        """The precisions the shards' vectors were made in (one, unless something mixed them;
        none before the first shard). A shard that cannot be read is left to the checks that
        read vectors."""
        found = set()
        for path in self.shard_files():
            try:
                found.add(shard_precision(path))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                continue
        return found

    def known_hashes(self) -> np.ndarray:
        """Text hashes with a vector in a finished shard (sorted, unique)."""
        parts = []
        for path in self.shard_files():
            try:
                with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
                    parts.append(np.asarray(data["hashes"]))
            except _DAMAGE as e:
                raise _damaged(
                    path,
                    e,
                    "run `papers catalog embed`, which drops it and embeds its papers again",
                ) from None
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def pending(self, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
        """(cids, hashes) of catalog papers whose text has no vector yet, one per text."""
        cids, hashes = catalog.hashes()
        missing = ~np.isin(hashes, self.known_hashes())
        cids, hashes = cids[missing], hashes[missing]
        _, first = np.unique(hashes, return_index=True)
        first.sort()
        return cids[first], hashes[first]

    def merge(self, catalog: Catalog, log: Log = lambda s: None) -> Merged:
        """Gather the vector of every catalog paper from the shards into merged/ (float16),
        in cid order, and (above ann.ANN_MIN) build the IVF-PQ index over it."""
        cids, hashes = catalog.hashes()
        files = self.shard_files()
        shard_hashes, shard_of, row_of = [], [], []
        dim = 0
        for i, path in enumerate(files):
            h, vecs = read_shard(path)
            dim = dim or int(vecs.shape[1])
            del vecs
            shard_hashes.append(h)
            shard_of.append(np.full(len(h), i, np.int32))
            row_of.append(np.arange(len(h), dtype=np.int32))
        if not files:
            raise CatalogError("nothing is embedded yet: run `papers catalog embed`")
        all_h = np.concatenate(shard_hashes)
        order = np.argsort(all_h, kind="stable")
        all_h, all_s, all_r = all_h[order], np.concatenate(shard_of)[order], np.concatenate(row_of)
        all_r = all_r[order]
        pos = np.searchsorted(all_h, hashes)
        pos_c = np.minimum(pos, len(all_h) - 1)
        have = all_h[pos_c] == hashes
        cids, pos_c = cids[have], pos_c[have]
        n = len(cids)
        tmp = Path(tempfile.mkdtemp(prefix=".merged.tmp-", dir=self.folder))
        try:
            out = np.lib.format.open_memmap(
                tmp / "vectors.npy", mode="w+", dtype=np.float16, shape=(n, dim)
            )
            src_shard, src_row = all_s[pos_c], all_r[pos_c]
            for i, path in enumerate(files):
                dest = np.nonzero(src_shard == i)[0]
                if len(dest):
                    _, vecs = read_shard(path)
                    out[dest] = vecs[src_row[dest]]
            out.flush()
            del out
            np.save(tmp / "cids.npy", cids)
            meta: dict[str, Any] = {
                "version": catalog.version,
                "count": n,
                "dim": dim,
                "missing": int((~have).sum()),
                "shards": len(files),
                "precision": ",".join(sorted(self.precisions())),
            }

            if n >= ann.ANN_MIN:
                log(f"{n} vectors: building the IVF-PQ index…")
                ann.build(tmp / "vectors.npy", tmp / ann.ANN_FILE, log=log)
                meta["ann"] = ann.ANN_FILE
                meta["ann_index"] = ann.factory_for(n, dim)
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            old = None
            if self.merged_dir.exists():
                old = Path(tempfile.mkdtemp(prefix=".merged.old-", dir=self.folder))
                os.replace(self.merged_dir, old / "merged")
            os.replace(tmp, self.merged_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.load()

    def is_current(self, catalog: Catalog) -> bool:
        """True if merged/ holds every shard and the catalog as it is now (and its index, if it
        has one, is the kind search/catalog/ann.py builds now)."""
        try:
            meta = json.loads((self.merged_dir / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if meta.get("ann") and meta.get("ann_index") != ann.factory_for(
            int(meta.get("count", 0)), int(meta.get("dim", 0))
        ):
            return False  # an index of another kind than ann.FACTORY: made again by a merge
        return meta.get("version") == catalog.version and meta.get("shards") == len(
            self.shard_files()
        )

    def load(self, catalog: Catalog | None = None) -> Merged:
        """The merged matrix; with `catalog`, refuse one merged before the last `add`.
        A merged file that is there but cannot be read is named (CatalogError)."""
        if not (self.merged_dir / "meta.json").is_file():
            raise CatalogError(
                "the catalog is not embedded with this model: run `papers catalog embed`"
            )
        fix = "run `papers catalog embed`, which merges the vectors again"
        path = self.merged_dir / "meta.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            path = self.merged_dir / "cids.npy"
            cids = np.load(path, allow_pickle=False)
            path = self.merged_dir / "vectors.npy"
            vecs = np.load(path, mmap_mode="r", allow_pickle=False)
        except (*_DAMAGE, UnicodeDecodeError) as e:
            raise _damaged(path, e, fix) from None
        if not isinstance(meta, dict) or cids.ndim != 1 or vecs.ndim != 2:
            raise CatalogError(f"{self.merged_dir} is damaged (its files disagree): {fix}")
        if len(cids) != len(vecs) or meta.get("count", len(cids)) != len(cids):
            raise CatalogError(f"{self.merged_dir} is damaged (its files disagree): {fix}")
        if catalog is not None and meta.get("version") != catalog.version:
            raise CatalogError(
                "papers were added to the catalog since it was embedded: run `papers catalog embed`"
            )
        return Merged(self.merged_dir, cids, vecs, meta)


# --------------------------------------------------------------------------------------------
# What an embedding run did (the run itself: catalog/embed_stages.py and catalog/embed.py)
# --------------------------------------------------------------------------------------------


@dataclass
class EmbedReport:
    papers: int = 0
    embedded: int = 0
    already: int = 0
    shards: int = 0
    seconds: float = 0.0
    workers: str = "local"
    missing: int = 0
    precision: str = ""
    # seconds spent in each stage (read, tokenize, model, write), where they are measured
    stages: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --------------------------------------------------------------------------------------------
# The encoder, and searching the catalog
# --------------------------------------------------------------------------------------------


@dataclass
class CatalogEncoder:
    """The encoder the catalog is embedded with: the notes index's own model (so catalog and
    notes vectors compare), its fingerprint, and its ONNX export folder (None when it runs
    in-process, e.g. a registered test encoder)."""

    encoder: Any
    fingerprint: str
    onnx_folder: Path | None
    document_prompt: str = ""
    model_path: Path | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)


def catalog_encoder(paths: Paths, model: str | None, log: Log = lambda s: None) -> CatalogEncoder:
    """The encoder for the catalog: the one the notes index was built with when there is an
    index (a different --model is refused), else `model` (or the default). Opened as a
    rebuild opens it (`open_encoder`): the ONNX export on every core, exported first if
    missing, sentence-transformers if it cannot be."""
    try:
        notes = Index.open(paths.index)
        manifest = dict(notes.manifest)
        notes.close()
        check_model(manifest, model)
        spec, fingerprint, prompts = indexed_model(manifest)
    except IndexMissing:
        spec = resolve_model(model)
        fingerprint = spec.fingerprint()
        prompts = (
            ("", "")
            if spec.registered
            else prompts_of(read_model_config(spec.path).get("prompts") or {})
        )
    enc = open_encoder(
        spec, paths.index, for_query=False, fingerprint=fingerprint, prompts=prompts, log=log
    )
    if spec.registered:
        return CatalogEncoder(enc, fingerprint, None)
    # Only the ONNX export can be shipped to Ray workers; an in-process model cannot.
    folder = encoder_dir(paths.index, fingerprint) if hasattr(enc, "folder") else None
    return CatalogEncoder(enc, fingerprint, folder, prompts[1], spec.path)


@dataclass
class CatalogHit:
    rank: int
    score: float
    paper: CatalogPaper

    def to_json(self) -> dict[str, Any]:
        # The score is a cosine similarity: its clipped form is the 0..1 relevance people read.
        relevance = round(min(1.0, max(0.0, self.score)), 4)
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "relevance": relevance,
            **self.paper.to_json(),
        }


def search_catalog(
    paths: Paths, fingerprint: str, qvec: np.ndarray, k: int, exclude_keys: Collection[str] = ()
) -> list[CatalogHit]:
    """The catalog papers closest to `qvec` (IVF-PQ with exact re-ranking above ann.ANN_MIN,
    else an exact scan)."""

    with Catalog.open(catalog_dir(paths)) as catalog:
        merged = Embeddings.of(paths, fingerprint).load(catalog)
        if merged.dim != len(qvec):
            raise CatalogError(
                "the catalog was embedded by another model: run `papers catalog embed`"
            )
        index = ann.load(merged.folder / merged.meta["ann"]) if merged.meta.get("ann") else None
        # pread, not the memory map, also for an exact scan: mapped pages stay in the RSS of a
        # long-running server (see ann.Rows)
        vecs = ann.Rows(merged.folder / "vectors.npy")
        try:
            scores, rows = ann.search(index, vecs, qvec, k + len(exclude_keys))
        finally:
            vecs.close()
        valid = rows[0] >= 0
        cids = [int(c) for c in merged.cids[rows[0][valid]]]
        found = catalog.papers(cids)
        out: list[CatalogHit] = []
        for cid, s in zip(cids, scores[0][valid], strict=True):
            p = found.get(cid)
            if p is None or p.key in exclude_keys:
                continue
            out.append(CatalogHit(len(out) + 1, float(s), p))
            if len(out) == k:
                break
        return out
