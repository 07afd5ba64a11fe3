"""Keyword retrieval: an SQLite FTS5 index over papers, ranked with bm25()."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .chunking import PaperText

if TYPE_CHECKING:
    from .library import Paper
    from .store import Index

# Title matches count more than body matches: a title says what the paper is.
TITLE_WEIGHT = 3.0
BODY_WEIGHT = 1.0

_WORD = re.compile(r"\w+", re.UNICODE)


def fill_keyword_index(
    db: sqlite3.Connection, rows: Iterable[tuple[int, Paper, PaperText]]
) -> None:
    """(Re)create the FTS5 table with one row per paper (rowid = pid)."""
    db.execute(
        "CREATE VIRTUAL TABLE papers_fts USING fts5("
        "title, body, tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.executemany(
        "INSERT INTO papers_fts(rowid, title, body) VALUES (?, ?, ?)",
        ((pid, p.title, " ".join([*p.section, *p.authors, text.body])) for pid, p, text in rows),
    )


def fts_query(text: str) -> str:
    """A question as an FTS5 query: any of its words (quoted, so no word is an operator)."""
    words = _WORD.findall(text.lower())
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def keyword_search(index: Index, text: str, k: int) -> list[tuple[int, float]]:
    """Top-k (pid, score) by bm25; higher is better."""
    q = fts_query(text)
    if not q:
        return []
    rows = index.query(
        "SELECT rowid, bm25(papers_fts, ?, ?) AS s FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY s LIMIT ?",
        (TITLE_WEIGHT, BODY_WEIGHT, q, k),
    )
    return [(int(pid), -float(s)) for pid, s in rows]
