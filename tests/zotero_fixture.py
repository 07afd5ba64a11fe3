"""Test fixtures that look like the real thing: a Zotero data directory built with Zotero's own
table and column names (zotero/zotero, resource/schema/userdata.sql, as of Zotero 7), and PDFs
with real text layers written by a minimal PDF writer (pypdf reads PDFs but cannot draw text)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

# The tables papers reads, with Zotero 7's columns (unused columns kept so that the queries
# run against the real shape, defaults included).
ZOTERO_SCHEMA = """
CREATE TABLE libraries (
    libraryID INTEGER PRIMARY KEY, type TEXT NOT NULL, editable INT NOT NULL DEFAULT 1,
    filesEditable INT NOT NULL DEFAULT 1, version INT NOT NULL DEFAULT 0,
    storageVersion INT NOT NULL DEFAULT 0, lastSync INT NOT NULL DEFAULT 0,
    archived INT NOT NULL DEFAULT 0
);
CREATE TABLE itemTypes (
    itemTypeID INTEGER PRIMARY KEY, typeName TEXT, templateItemTypeID INT, display INT DEFAULT 1
);
CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT, fieldFormatID INT);
CREATE TABLE items (
    itemID INTEGER PRIMARY KEY, itemTypeID INT NOT NULL,
    dateAdded TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    dateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    libraryID INT NOT NULL, key TEXT NOT NULL, version INT NOT NULL DEFAULT 0,
    synced INT NOT NULL DEFAULT 0, UNIQUE (libraryID, key)
);
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
CREATE TABLE itemData (itemID INT, fieldID INT, valueID, PRIMARY KEY (itemID, fieldID));
CREATE TABLE itemNotes (
    itemID INTEGER PRIMARY KEY, parentItemID INT, note TEXT, title TEXT
);
CREATE TABLE itemAttachments (
    itemID INTEGER PRIMARY KEY, parentItemID INT, linkMode INT, contentType TEXT,
    charsetID INT, path TEXT, syncState INT DEFAULT 0, storageModTime INT, storageHash TEXT,
    lastProcessedModificationTime INT
);
CREATE TABLE itemAnnotations (
    itemID INTEGER PRIMARY KEY, parentItemID INT NOT NULL, type INTEGER NOT NULL,
    authorName TEXT, text TEXT, comment TEXT, color TEXT, pageLabel TEXT,
    sortIndex TEXT NOT NULL, position TEXT NOT NULL, isExternal INT NOT NULL
);
CREATE TABLE tags (tagID INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE itemTags (itemID INT NOT NULL, tagID INT NOT NULL, type INT NOT NULL,
    PRIMARY KEY (itemID, tagID));
CREATE TABLE creators (
    creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, fieldMode INT,
    UNIQUE (lastName, firstName, fieldMode)
);
CREATE TABLE itemCreators (
    itemID INT NOT NULL, creatorID INT NOT NULL, creatorTypeID INT NOT NULL DEFAULT 1,
    orderIndex INT NOT NULL DEFAULT 0, PRIMARY KEY (itemID, creatorID, creatorTypeID, orderIndex)
);
CREATE TABLE collections (
    collectionID INTEGER PRIMARY KEY, collectionName TEXT NOT NULL, parentCollectionID INT,
    clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, libraryID INT NOT NULL,
    key TEXT NOT NULL, version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0
);
CREATE TABLE collectionItems (
    collectionID INT NOT NULL, itemID INT NOT NULL, orderIndex INT NOT NULL DEFAULT 0,
    PRIMARY KEY (collectionID, itemID)
);
CREATE TABLE deletedItems (
    itemID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL
);
INSERT INTO libraries (libraryID, type) VALUES (1, 'user'), (2, 'feed');
INSERT INTO itemTypes (itemTypeID, typeName) VALUES
    (1, 'annotation'), (2, 'attachment'), (3, 'book'), (14, 'document'),
    (22, 'journalArticle'), (28, 'note'), (11, 'conferencePaper'), (30, 'preprint');
INSERT INTO fields (fieldID, fieldName) VALUES
    (1, 'title'), (2, 'abstractNote'), (6, 'date'), (13, 'url'), (16, 'extra'),
    (26, 'DOI'), (12, 'publicationTitle'), (40, 'proceedingsTitle'), (90, 'archiveID'),
    (91, 'repository');
"""

FIELD_IDS = {
    "title": 1,
    "abstractNote": 2,
    "date": 6,
    "url": 13,
    "extra": 16,
    "DOI": 26,
    "publicationTitle": 12,
    "proceedingsTitle": 40,
    "archiveID": 90,
    "repository": 91,
}
TYPE_IDS = {
    "annotation": 1,
    "attachment": 2,
    "journalArticle": 22,
    "note": 28,
    "conferencePaper": 11,
    "preprint": 30,
}


@dataclass
class Annotation:
    text: str
    comment: str = ""
    page: str = ""
    kind: int = 1  # highlight


@dataclass
class Item:
    key: str
    fields: dict[str, str]
    type: str = "journalArticle"
    authors: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    collection: list[str] = field(default_factory=list)  # path, outermost first
    notes: list[str] = field(default_factory=list)  # HTML
    pdf: list[str] | None = None  # pages of a stored PDF attachment
    ft_cache: str | None = None  # text of a stored attachment's .zotero-ft-cache
    annotations: list[Annotation] = field(default_factory=list)
    trashed: bool = False
    library: int = 1


class ZoteroBuilder:
    """Writes items into a Zotero data directory (zotero.sqlite + storage/)."""

    def __init__(self, data_dir: Path, wal: bool = False):
        self.dir = data_dir
        (data_dir / "storage").mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "zotero.sqlite")
        if wal:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.db.executescript(ZOTERO_SCHEMA)
        self.next_id = 1
        self.collections: dict[tuple[str, ...], int] = {}

    def _item(self, type_name: str, key: str, library: int = 1) -> int:
        item_id = self.next_id
        self.next_id += 1
        self.db.execute(
            "INSERT INTO items (itemID, itemTypeID, libraryID, key) VALUES (?, ?, ?, ?)",
            (item_id, TYPE_IDS[type_name], library, key),
        )
        return item_id

    def _value(self, value: str) -> int:
        self.db.execute("INSERT OR IGNORE INTO itemDataValues (value) VALUES (?)", (value,))
        return int(
            self.db.execute(
                "SELECT valueID FROM itemDataValues WHERE value=?", (value,)
            ).fetchone()[0]
        )

    def _collection(self, path: list[str]) -> int:
        parent = None
        for i in range(len(path)):
            sub = tuple(path[: i + 1])
            if sub not in self.collections:
                cur = self.db.execute(
                    "INSERT INTO collections (collectionName, parentCollectionID, libraryID, key) "
                    "VALUES (?, ?, 1, ?)",
                    (path[i], parent, f"COLL{len(self.collections):04d}"),
                )
                self.collections[sub] = int(cur.lastrowid or 0)
            parent = self.collections[sub]
        assert parent is not None
        return parent

    def add(self, item: Item) -> int:
        item_id = self._item(item.type, item.key, item.library)
        for name, value in item.fields.items():
            self.db.execute(
                "INSERT INTO itemData VALUES (?, ?, ?)",
                (item_id, FIELD_IDS[name], self._value(value)),
            )
        for order, (first, last) in enumerate(item.authors):
            self.db.execute(
                "INSERT OR IGNORE INTO creators (firstName, lastName, fieldMode) VALUES (?, ?, 0)",
                (first, last),
            )
            (cid,) = self.db.execute(
                "SELECT creatorID FROM creators WHERE firstName=? AND lastName=?", (first, last)
            ).fetchone()
            self.db.execute("INSERT INTO itemCreators VALUES (?, ?, 1, ?)", (item_id, cid, order))
        for tag in item.tags:
            self.db.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (tag,))
            (tid,) = self.db.execute("SELECT tagID FROM tags WHERE name=?", (tag,)).fetchone()
            self.db.execute("INSERT INTO itemTags VALUES (?, ?, 0)", (item_id, tid))
        if item.collection:
            self.db.execute(
                "INSERT INTO collectionItems VALUES (?, ?, 0)",
                (self._collection(item.collection), item_id),
            )
        for n, html in enumerate(item.notes):
            note_id = self._item("note", f"{item.key}N{n}")
            self.db.execute(
                "INSERT INTO itemNotes VALUES (?, ?, ?, ?)", (note_id, item_id, html, "")
            )
        if item.pdf is not None or item.ft_cache is not None:
            att_key = f"{item.key}A0"
            att_id = self._item("attachment", att_key)
            folder = self.dir / "storage" / att_key
            folder.mkdir(parents=True, exist_ok=True)
            name = "paper.pdf"
            if item.pdf is not None:
                write_pdf(folder / name, item.pdf)
            if item.ft_cache is not None:
                (folder / ".zotero-ft-cache").write_text(item.ft_cache, encoding="utf-8")
            self.db.execute(
                "INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) "
                "VALUES (?, ?, 0, 'application/pdf', ?)",
                (att_id, item_id, f"storage:{name}"),
            )
            for n, a in enumerate(item.annotations):
                ann_id = self._item("annotation", f"{item.key}H{n}")
                self.db.execute(
                    "INSERT INTO itemAnnotations (itemID, parentItemID, type, text, comment, "
                    "color, pageLabel, sortIndex, position, isExternal) "
                    "VALUES (?, ?, ?, ?, ?, '#ffd400', ?, ?, '{}', 0)",
                    (ann_id, att_id, a.kind, a.text, a.comment, a.page, f"{n:05d}|000000|00000"),
                )
        if item.trashed:
            self.db.execute("INSERT INTO deletedItems (itemID) VALUES (?)", (item_id,))
        return item_id

    def add_standalone_pdf(
        self,
        key: str,
        pages: list[str],
        title: str | None = None,
        file_title: str = "x.pdf",
        file_name: str | None = None,
    ) -> int:
        """A PDF dropped into Zotero on its own: an attachment item without a parent, titled
        `file_title` in Zotero (its file name unless the user renamed it), stored as
        `file_name` (default: `file_title`)."""
        file_name = file_name or file_title
        att_id = self._item("attachment", key)
        self.db.execute(
            "INSERT INTO itemData VALUES (?, ?, ?)",
            (att_id, FIELD_IDS["title"], self._value(file_title)),
        )
        folder = self.dir / "storage" / key
        folder.mkdir(parents=True, exist_ok=True)
        write_pdf(folder / file_name, pages, title=title)
        self.db.execute(
            "INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) "
            "VALUES (?, NULL, 0, 'application/pdf', ?)",
            (att_id, f"storage:{file_name}"),
        )
        return att_id

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_pdf_objects(path: Path, objects: list[bytes], root: int, info: int | None) -> None:
    """A PDF file of these objects (numbered from 1): the cross-reference table and the
    trailer naming the catalog `root` and the document info `info`."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = f"<< /Size {len(objects) + 1} /Root {root} 0 R"
    trailer += f" /Info {info} 0 R >>" if info else " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))


def write_pdf(path: Path, pages: list[str], title: str | None = None) -> None:
    """A valid PDF with one page per string (Helvetica, ASCII text, one line per 90 chars)."""
    objects: list[bytes] = []

    def add(body: str | bytes) -> int:
        objects.append(body.encode("latin-1") if isinstance(body, str) else body)
        return len(objects)

    catalog = add("")  # filled in below
    pages_obj = add("")
    font = add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for text in pages:
        lines: list[str] = []
        for para in text.split("\n"):
            words, line = para.split(), ""
            for w in words:
                if len(line) + len(w) + 1 > 90:
                    lines.append(line)
                    line = w
                else:
                    line = f"{line} {w}".strip()
            lines.append(line)
        ops = "BT /F1 11 Tf 14 TL 50 750 Td " + " ".join(f"{_pdf_string(ln)} Tj T*" for ln in lines)
        stream = (ops + " ET").encode("latin-1")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    objects[pages_obj - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    ).encode()
    info = add(f"<< /Title {_pdf_string(title)} >>") if title else None
    write_pdf_objects(path, objects, catalog, info)
