"""Reading a Zotero data directory (zotero.sqlite + storage/) into records, read-only.

Design: the user names the directory once, `papers import --zotero DIR`, which records it in
the library's config file (`papers.toml`, table `[zotero]`, key `data_dir`). Every rebuild then
reads it like one more note file: its stat key (size and mtime of zotero.sqlite, its -wal, and
every `.zotero-ft-cache` and PDF under storage/) is compared with the previous build's, and an
unchanged library is not opened at all. A changed one (Zotero writes to its database often) is
read again with a few bulk queries; each item's rows and attachment stats are hashed, and only
items whose hash changed are made again (notes turned into text, full text read, PDFs hashed:
index/zotero-items-*.json keeps the others' records). Embedding is incremental as for notes.

Zotero keeps its database open while it runs. To read it without disturbing it (or being
disturbed by it), zotero.sqlite and its -wal are copied into a temporary folder and the copy is
opened read-only: the -wal holds changes Zotero has not yet checkpointed, and copying it with
the database keeps them. Only files inside the data directory are read; attachments Zotero
merely links to elsewhere on disk are left out (the user named the data directory, not them).

What each regular item (not a note, attachment or annotation; not in the trash) gives, as one
`Record`: title, abstract, authors, year, venue, DOI, arXiv id (from the DOI, URL, extra or
archive id fields), tags, the collection path as the section, its child notes (HTML to text)
and the highlights and comments on its PDFs with their page labels (as the note), and its
attachments' full text: each stored PDF page by page, else the text Zotero itself extracted
(`storage/<key>/.zotero-ft-cache`), as the record's `pages`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from search.errors import ZoteroError
from search.readers.config import load_config
from search.readers.pdfs import drop_references, extract_pages, guess_title
from search.readers.records import (
    FileResult,
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

# A record's `file` for a Zotero item: "zotero:<item key>" (not a path under notes/).
PREFIX = "zotero:"
DB_FILE = "zotero.sqlite"
FT_CACHE = ".zotero-ft-cache"
# Bump when what a record holds changes: cached items of the old shape are then read again.
ITEM_CACHE_VERSION = 1
# Item types that are not papers: they hang off papers, or are deleted placeholders.
CHILD_TYPES = ("note", "attachment", "annotation")
# Annotation types in Zotero's itemAnnotations.type (the image and ink kinds carry no text).
ANNOTATION_KINDS = {1: "highlight", 2: "note", 3: "image", 4: "ink", 5: "underline", 6: "text"}
# Fields that name where a paper appeared, most specific first.
VENUE_FIELDS = (
    "publicationTitle",
    "proceedingsTitle",
    "conferenceName",
    "bookTitle",
    "repository",
    "university",
)


def is_zotero_source(file: str) -> bool:
    """Whether a source file name stands for the Zotero library rather than a note file."""
    return file.startswith(PREFIX)


def check_data_dir(data_dir: Path) -> Path:
    """`data_dir` resolved, if it holds a zotero.sqlite.

    Raises:
        ZoteroError: it does not.
    """
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / DB_FILE).is_file():
        raise ZoteroError(
            f"no {DB_FILE} in {data_dir}: name Zotero's data directory "
            "(Zotero: Settings → Advanced → Files and Folders)"
        )
    return data_dir


# -- the stat key: has anything Zotero keeps changed? --------------------------------------------


def _watched_files(data_dir: Path) -> Iterator[Path]:
    for name in (DB_FILE, DB_FILE + "-wal"):
        yield data_dir / name
    storage = data_dir / "storage"
    try:
        folders = sorted(os.scandir(storage), key=lambda e: e.name)
    except OSError:
        return
    for folder in folders:
        if not folder.is_dir(follow_symlinks=False):
            continue
        try:
            names = sorted(e.name for e in os.scandir(folder.path))
        except OSError:
            continue
        for name in names:
            if name == FT_CACHE or name.lower().endswith(".pdf"):
                yield Path(folder.path) / name


def library_stat_key(data_dir: Path) -> tuple[int, int]:
    """(total size, 62-bit hash of every watched file's name, size and mtime): equal keys mean
    nothing Zotero keeps for us changed. Stats files only; reads none."""
    h = hashlib.sha256()
    total = 0
    for p in _watched_files(data_dir):
        try:
            st = p.stat()
        except OSError:
            continue
        total += st.st_size
        h.update(f"{p.relative_to(data_dir).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return total, int.from_bytes(h.digest()[:8], "big") >> 2


def zotero_sources(root: Path, problems: list[Problem]) -> list[tuple[Path, str, int, int]]:
    """The Zotero library of the library at `root` as a (path, name, size, stat key) "file" for
    the rebuild, or [] when none is configured. A configured directory that is gone is a
    problem (reported, its papers left out), not an error: it may be on an unmounted disk.

    Raises:
        ZoteroError: papers.toml is not valid.
    """
    data_dir = load_config(root).zotero_dir
    if data_dir is None:
        return []
    if not (data_dir / DB_FILE).is_file():
        problems.append(Problem(str(data_dir), None, f"no {DB_FILE} here: Zotero library skipped"))
        return []
    size, key = library_stat_key(data_dir)
    return [(data_dir, PREFIX + data_dir.as_posix(), size, key)]


# -- reading the database ----------------------------------------------------------------------


@contextmanager
def open_copy(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a private copy of zotero.sqlite and its -wal: a running Zotero
    is neither blocked nor able to change what we read half-way, and changes still in the -wal
    are kept."""
    with tempfile.TemporaryDirectory(prefix="papers-zotero-") as tmp:
        for name in (DB_FILE, DB_FILE + "-wal"):
            src = data_dir / name
            if src.is_file():
                shutil.copyfile(src, Path(tmp) / name)
        db = sqlite3.connect(f"file:{Path(tmp) / DB_FILE}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()


class _HTMLText(HTMLParser):
    """Text of a Zotero note (HTML): block elements end lines, scripts and styles are dropped."""

    BLOCKS = frozenset(
        "p div br li h1 h2 h3 h4 h5 h6 blockquote pre tr table ul ol section".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML note: one line per paragraph, spaces collapsed."""
    parser = _HTMLText()
    parser.feed(html or "")
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _year(date: str | None) -> int | None:
    m = re.search(r"\b(1[5-9]\d\d|2\d\d\d)\b", date or "")
    return int(m.group(1)) if m else None


def _arxiv_of(fields: dict[str, str]) -> str | None:
    doi = fields.get("DOI", "")
    m = re.search(r"10\.48550/arxiv\.(\S+)", doi, re.I)
    if m:
        return parse_arxiv_id(m.group(1))
    for name in ("archiveID", "url", "extra"):
        value = fields.get(name, "")
        if name == "extra":
            m = re.search(r"arxiv:\s*(\S+)", value, re.I)
            value = m.group(1) if m else ""
        elif name == "url" and "arxiv.org" not in value.lower():
            value = ""
        found = parse_arxiv_id(value)
        if found:
            return found
    return None


def _doi_of(fields: dict[str, str]) -> str | None:
    if fields.get("DOI"):
        return normalise_doi(fields["DOI"])
    m = re.search(r"^\s*DOI:\s*(\S+)", fields.get("extra", ""), re.I | re.M)
    return normalise_doi(m.group(1)) if m else None


def read_zotero(data_dir: Path, pdf_cache: Path | None = None) -> FileResult:
    """Every paper in the Zotero library at `data_dir`; never raises for bad content."""
    result = FileResult()
    where = PREFIX + data_dir.as_posix()
    try:
        with open_copy(data_dir) as db:
            _read(db, data_dir, pdf_cache, result)
    except (OSError, sqlite3.Error) as e:
        result.problems.append(Problem(where, None, f"cannot read the Zotero database: {e}"))
    return result


def _read(db: sqlite3.Connection, data_dir: Path, pdf_cache: Path | None, out: FileResult) -> None:
    tables = _tables(db)
    trashed = (
        "SELECT itemID FROM deletedItems" if "deletedItems" in tables else "SELECT NULL WHERE 0"
    )
    papers = _paper_items(db, tables, trashed)
    if not papers:
        return
    rows = _ItemRows.read(db, tables, trashed, {item_id for item_id, _ in papers})
    cache = _ItemCache(data_dir, pdf_cache)
    for item_id, key in papers:
        item = rows.item(item_id, key)
        sig = _item_signature(data_dir, item)
        cached = cache.get(key, sig)
        if cached is None:
            cached = _item_record(data_dir, pdf_cache, item)
            cache.put(key, sig, cached)
        record, problems = cached
        out.problems.extend(problems)
        if record is not None:
            out.records.append(record)
    cache.save()


def _paper_items(db: sqlite3.Connection, tables: set[str], trashed: str) -> list[tuple[int, str]]:
    """(itemID, key) of every paper: regular items, and PDFs stored on their own (dropped into
    Zotero without a parent item); not trashed, not in a feed."""
    feeds = ""
    if "libraries" in tables:
        # Feed items (RSS subscriptions) live in the same tables but are not the user's papers.
        cols = {r[1] for r in db.execute("PRAGMA table_info(libraries)")}
        kind = "type" if "type" in cols else "libraryType" if "libraryType" in cols else None
        if kind:
            feeds = f" AND i.libraryID NOT IN (SELECT libraryID FROM libraries WHERE {kind}='feed')"
    return db.execute(
        "SELECT i.itemID, i.key FROM items i JOIN itemTypes t USING (itemTypeID) "
        f"WHERE (t.typeName NOT IN ({','.join('?' * len(CHILD_TYPES))}) "
        "OR i.itemID IN (SELECT itemID FROM itemAttachments WHERE parentItemID IS NULL "
        "AND lower(path) LIKE 'storage:%.pdf')) "
        f"AND i.itemID NOT IN ({trashed}){feeds} ORDER BY i.itemID",
        CHILD_TYPES,
    ).fetchall()


@dataclass
class _ItemRows:
    """Every row the papers `ids` have in the database's other tables, by itemID: one query
    per table, not one per paper."""

    fields: dict[int, dict[str, str]]
    authors: dict[int, list[str]]
    tags: dict[int, list[str]]
    sections: dict[int, list[str]]
    notes: dict[int, list[str]]
    attachments: dict[int, list[tuple[int, str, str]]]
    annotations: dict[int, list[str]]

    @classmethod
    def read(
        cls, db: sqlite3.Connection, tables: set[str], trashed: str, ids: set[int]
    ) -> _ItemRows:
        attachments = _attachments(db, trashed, ids)
        return cls(
            fields=_fields(db, ids),
            authors=_authors(db, ids),
            tags=_tags(db, ids),
            sections=_collection_paths(db, tables, trashed),
            notes=_notes(db, trashed, ids),
            attachments=attachments,
            annotations=_annotations(db, tables, trashed, attachments),
        )

    def item(self, item_id: int, key: str) -> _Item:
        return _Item(
            item_id,
            key,
            self.fields.get(item_id, {}),
            self.authors.get(item_id, []),
            self.tags.get(item_id, []),
            self.sections.get(item_id, []),
            self.notes.get(item_id, []),
            self.annotations.get(item_id, []),
            self.attachments.get(item_id, []),
        )


def _fields(db: sqlite3.Connection, ids: set[int]) -> dict[int, dict[str, str]]:
    fields: dict[int, dict[str, str]] = {}
    for item_id, name, value in db.execute(
        "SELECT d.itemID, f.fieldName, v.value FROM itemData d "
        "JOIN fields f USING (fieldID) JOIN itemDataValues v USING (valueID)"
    ):
        if item_id in ids and value is not None:
            fields.setdefault(item_id, {})[name] = str(value)
    return fields


def _authors(db: sqlite3.Connection, ids: set[int]) -> dict[int, list[str]]:
    authors: dict[int, list[str]] = {}
    for item_id, first, last in db.execute(
        "SELECT ic.itemID, c.firstName, c.lastName FROM itemCreators ic "
        "JOIN creators c USING (creatorID) ORDER BY ic.itemID, ic.orderIndex"
    ):
        name = " ".join(x for x in (first, last) if x)
        if item_id in ids and name:
            authors.setdefault(item_id, []).append(name)
    return authors


def _tags(db: sqlite3.Connection, ids: set[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    for item_id, name in db.execute(
        "SELECT it.itemID, t.name FROM itemTags it JOIN tags t USING (tagID) ORDER BY t.name"
    ):
        if item_id in ids:
            tags.setdefault(item_id, []).append(name)
    return tags


def _notes(db: sqlite3.Connection, trashed: str, ids: set[int]) -> dict[int, list[str]]:
    notes: dict[int, list[str]] = {}
    for parent, html in db.execute(
        f"SELECT parentItemID, note FROM itemNotes WHERE parentItemID IS NOT NULL "
        f"AND itemID NOT IN ({trashed}) ORDER BY itemID"
    ):
        if parent in ids and html:
            notes.setdefault(parent, []).append(html)  # HTML; text only if the item changed
    return notes


def _attachments(
    db: sqlite3.Connection, trashed: str, ids: set[int]
) -> dict[int, list[tuple[int, str, str]]]:
    """Attachments stored in storage/<key>/ (linkMode 0 and 1: imported files and URLs), by
    the paper they belong to: (attachment itemID, its key, file name)."""
    attachments: dict[int, list[tuple[int, str, str]]] = {}
    for att_id, parent, key, path in db.execute(
        "SELECT a.itemID, a.parentItemID, i.key, a.path FROM itemAttachments a "
        f"JOIN items i USING (itemID) WHERE a.itemID NOT IN ({trashed}) ORDER BY a.itemID"
    ):
        parent = att_id if parent is None else parent  # a standalone PDF is its own paper
        if parent in ids:
            name = path[len("storage:") :] if (path or "").startswith("storage:") else ""
            attachments.setdefault(parent, []).append((att_id, key, name))
    return attachments


def _annotations(
    db: sqlite3.Connection,
    tables: set[str],
    trashed: str,
    attachments: dict[int, list[tuple[int, str, str]]],
) -> dict[int, list[str]]:
    """PDF annotations made in Zotero's reader, as lines, by the paper of their attachment."""
    annotations: dict[int, list[str]] = {}
    if "itemAnnotations" not in tables:
        return annotations
    owner = {att: parent for parent, atts in attachments.items() for att, _, _ in atts}
    for att, kind, text, comment, page in db.execute(
        "SELECT parentItemID, type, text, comment, pageLabel FROM itemAnnotations "
        f"WHERE itemID NOT IN ({trashed}) ORDER BY parentItemID, sortIndex"
    ):
        parent = owner.get(att)
        line = _annotation_line(kind, text, comment, page)
        if parent is not None and line:
            annotations.setdefault(parent, []).append(line)
    return annotations


_Found = tuple[Record | None, list[Problem]]


@dataclass
class _Item:
    """One paper's rows from the database, as stored (notes still HTML)."""

    item_id: int
    key: str
    fields: dict[str, str]
    authors: list[str]
    tags: list[str]
    section: list[str]
    notes_html: list[str]
    annotations: list[str]
    attachments: list[tuple[int, str, str]]  # (itemID, key, file name in storage/<key>/)


def _item_signature(data_dir: Path, item: _Item) -> str:
    """What an item's record is made of, hashed: its rows as stored, and the size and mtime
    of its attachment files."""
    rows = [getattr(item, f.name) for f in dataclasses.fields(item)]  # astuple deep-copies
    h = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode())
    for _att, key, name in item.attachments:
        folder = attachment_folder(data_dir, key)
        for f in (name, FT_CACHE):
            try:
                st = os.stat(folder / f) if f and folder and _plain_name(f) else None
            except OSError:
                st = None
            h.update(
                f"{key}/{f}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1};".encode()
            )
    return h.hexdigest()


class _ItemCache:
    """Each item's record by item key and signature, kept beside the PDF cache (index/), so
    that when Zotero changed a few items only those are read again: their notes turned into
    text, their full text read, their PDFs hashed."""

    def __init__(self, data_dir: Path, pdf_cache: Path | None):
        self.path: Path | None = None
        self.old: dict[str, dict] = {}
        self.new: dict[str, dict] = {}
        if pdf_cache is None:
            return
        tag = hashlib.sha256(data_dir.as_posix().encode()).hexdigest()[:12]
        self.path = pdf_cache.parent / f"zotero-items-{tag}.json"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == ITEM_CACHE_VERSION:
                self.old = data["items"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.old = {}

    def get(self, key: str, sig: str) -> _Found | None:
        entry = self.old.get(key)
        if not isinstance(entry, dict) or entry.get("sig") != sig:
            return None
        try:
            record = Record(**entry["record"]) if entry["record"] is not None else None
            found = (record, [Problem(**p) for p in entry["problems"]])
        except (KeyError, TypeError):
            return None
        self.new[key] = entry
        return found

    def put(self, key: str, sig: str, found: _Found) -> None:
        record, problems = found
        self.new[key] = {
            "sig": sig,
            "record": dataclasses.asdict(record) if record is not None else None,
            "problems": [dataclasses.asdict(p) for p in problems],
        }

    def save(self) -> None:
        if self.path is None or self.new == self.old:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            tmp.write_text(
                json.dumps({"version": ITEM_CACHE_VERSION, "items": self.new}, ensure_ascii=False),
                encoding="utf-8",
            )
            os.replace(tmp, self.path)
        except OSError:
            pass  # an optimisation: a full disk must not fail the rebuild


def _item_record(data_dir: Path, pdf_cache: Path | None, item: _Item) -> _Found:
    """The record of one item (None if it has no title) and the problems met reading it."""
    problems: list[Problem] = []
    key, atts, f = item.key, item.attachments, item.fields
    title = clean_text(f.get("title", ""))
    pages: list[list[str]] = []
    pdf_title = ""
    for _att, att_key, name in atts:
        text, meta_title = _attachment_text(data_dir, att_key, name, pdf_cache, problems)
        pages += text
        pdf_title = pdf_title or meta_title
    standalone = any(a == item.item_id for a, _, _ in atts)
    if standalone and not pages:
        return None, problems  # a PDF alone with no text (a scan): nothing to find it by
    if standalone and _default_attachment_title(title, atts):
        # A standalone PDF's own title is usually its file name or "Full Text PDF": its text
        # says more. A title the user gave it in Zotero stays.
        first = pages[0][2] if pages else ""
        title = guess_title(pdf_title, first, "") or title
    if not title:
        problems.append(Problem(PREFIX + key, None, "Zotero item without a title; skipped"))
        return None, problems
    texts = [t for t in (html_to_text(h) for h in item.notes_html) if t]
    note = "\n".join([*texts, *item.annotations])
    return (
        Record(
            title=title,
            file=PREFIX + key,
            line=0,
            section=item.section,
            note=note,
            abstract=clean_text(f.get("abstractNote", "")),
            arxiv=_arxiv_of(f),
            doi=_doi_of(f),
            url=f.get("url") or None,
            authors=item.authors,
            year=_year(f.get("date")),
            venue=next((f[v] for v in VENUE_FIELDS if f.get(v)), None),
            tags=item.tags,
            extra={"zotero_key": key},
            pages=pages,
        ),
        problems,
    )


# Titles Zotero gives an attachment itself (its connectors name PDFs so).
_ATTACHMENT_TITLES = re.compile(
    r"^(full ?text( pdf)?|pdf|snapshot|(submitted|accepted|published) version|preprint( pdf)?"
    r"|arxiv(\.org)? (fulltext )?pdf|attachment)$",
    re.I,
)


def _default_attachment_title(title: str, atts: list[tuple[int, str, str]]) -> bool:
    """True if `title` is what Zotero named the attachment, not what the user typed: empty,
    its file name (with or without the extension), or a connector's "Full Text PDF"."""
    names = {n for _, _, n in atts} | {Path(n).stem for _, _, n in atts}
    t = title.strip()
    return not t or t in names or t.lower().endswith(".pdf") or bool(_ATTACHMENT_TITLES.match(t))


def _annotation_line(kind: int, text: str | None, comment: str | None, page: str | None) -> str:
    """One annotation as a line of the paper's note: `p. 4: "highlighted text" — comment`."""
    text = " ".join((text or "").split())
    comment = " ".join(html_to_text(comment or "").split())
    if not text and not comment:
        return ""
    body = " — ".join(x for x in (f"“{text}”" if text else "", comment) if x)
    label = ANNOTATION_KINDS.get(kind, "annotation")
    return f"{label} p. {page}: {body}" if page else f"{label}: {body}"


def _collection_paths(
    db: sqlite3.Connection, tables: set[str], trashed: str
) -> dict[int, list[str]]:
    """itemID -> path of its first collection (outermost first), the section of its paper."""
    if "collections" not in tables or "collectionItems" not in tables:
        return {}
    names: dict[int, tuple[str, int | None]] = {
        cid: (name, parent)
        for cid, name, parent in db.execute(
            "SELECT collectionID, collectionName, parentCollectionID FROM collections"
        )
    }

    def path(cid: int) -> list[str]:
        out: list[str] = []
        seen: set[int] = set()
        current: int | None = cid
        while current is not None and current in names and current not in seen:
            seen.add(current)
            name, current = names[current]
            out.append(name)
        return out[::-1]

    trashed_collections = (
        {r[0] for r in db.execute("SELECT collectionID FROM deletedCollections")}
        if "deletedCollections" in tables
        else set()
    )
    out: dict[int, list[str]] = {}
    for cid, item_id in db.execute(
        "SELECT collectionID, itemID FROM collectionItems ORDER BY itemID, collectionID"
    ):
        if item_id not in out and cid not in trashed_collections:
            out[item_id] = path(cid)
    return out


_UNSAFE = (
    "attachment path leaves its folder in storage/ or holds a NUL byte: not read "
    "(nothing outside the Zotero folder is read)"
)


def attachment_folder(data_dir: Path, key: str) -> Path | None:
    """storage/<key>/ for an attachment key from the database, or None when that path would
    lead outside the Zotero folder's storage/ (`../../outside`, a symlink out) or cannot be
    a path at all (a NUL byte): database content is never trusted as a path."""
    if not _plain_name(key):
        return None
    storage = os.path.realpath(data_dir / "storage")
    folder = os.path.realpath(os.path.join(storage, key))
    if os.path.dirname(folder) != storage:
        return None
    return Path(folder)


def _plain_name(name: str) -> bool:
    """One path component: no separator, no NUL, not `.` or `..`."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _attachment_text(
    data_dir: Path, key: str, name: str, pdf_cache: Path | None, problems: list[Problem]
) -> tuple[list[list[str]], str]:
    """[file, page label, text] of a stored attachment: a PDF page by page, else Zotero's own
    extracted text (.zotero-ft-cache, no pages), else nothing; and the PDF's metadata title."""
    cite = f"{PREFIX}{key}/{name}" if name else f"{PREFIX}{key}"
    cite = cite.replace("\0", "\\0")
    folder = attachment_folder(data_dir, key)
    if folder is None:
        problems.append(Problem(cite, None, _UNSAFE))
        return [], ""
    if name and not _plain_name(name):
        problems.append(Problem(cite, None, _UNSAFE))
        name = ""  # Zotero's own full text of the attachment is still read
    if name.lower().endswith(".pdf") and (folder / name).is_file():
        text = extract_pages(folder / name, pdf_cache)
        if text.problem:
            problems.append(Problem(cite, None, text.problem))
        pages = drop_references(text.pages)
        if pages and not text.problem:
            return [[cite, label, page] for label, page in pages if page.strip()], text.title
    ft = folder / FT_CACHE
    if ft.is_file():
        try:
            full = ft.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            problems.append(Problem(cite, None, f"cannot read {FT_CACHE}: {e.strerror or e}"))
            return [], ""
        kept = drop_references([("", full)])
        if kept and kept[0][1].strip():
            return [[cite, "", kept[0][1]]], ""
    return [], ""
