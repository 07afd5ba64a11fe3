"""Where a library lives on disk, and how mentions of papers join into papers."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from search.readers.records import Record, normalise_title

LIBRARY_ENV = "PAPERS_LIBRARY"
# DataCite DOIs arXiv gives every preprint (10.48550/arXiv.2101.00001).
ARXIV_DOI_PREFIX = "10.48550/"


@dataclass(frozen=True)
class Paths:
    """The folders of one library: notes/ (the truth) and index/ (built, disposable)."""

    root: Path

    @property
    def notes(self) -> Path:
        return self.root / "notes"

    @property
    def index(self) -> Path:
        return self.root / "index"


def library_paths(root: str | os.PathLike[str] | None = None) -> Paths:
    """The library at `root`, else $PAPERS_LIBRARY, else the current directory."""
    if root is None:
        root = os.environ.get(LIBRARY_ENV) or "."
    return Paths(Path(root).expanduser().resolve())


@dataclass
class Paper:
    """One paper: every mention of it in the notes, joined."""

    id: str
    records: list[Record] = field(default_factory=list)

    @property
    def title(self) -> str:
        # The first mention written by hand wins over imported ones, which may be truncated.
        return self._first_by_preference().title

    def _first_by_preference(self) -> Record:
        # A list entry names the paper in full; a note file's heading is often a short name
        # ("DCGAN") or a generic one ("Paper Review"). Imported records, and a PDF's guessed
        # title, come last.
        hand_written = [r for r in self.records if not r.file.endswith((".jsonl", ".bib", ".pdf"))]
        for r in hand_written:
            if r.extra.get("kind") != "paper-file":
                return r
        return hand_written[0] if hand_written else self.records[0]

    @property
    def arxiv(self) -> str | None:
        return next((r.arxiv for r in self.records if r.arxiv), None)

    @property
    def doi(self) -> str | None:
        # A preprint's DOI (arXiv's 10.48550/...) gives way to the published version's.
        dois = [r.doi for r in self.records if r.doi]
        return next((d for d in dois if not d.startswith(ARXIV_DOI_PREFIX)), None) or next(
            iter(dois), None
        )

    @property
    def url(self) -> str | None:
        return next((r.url for r in self.records if r.url), None)

    @property
    def abstract(self) -> str:
        # The longest abstract is the least likely to be truncated.
        return max((r.abstract for r in self.records), key=len, default="")

    @property
    def notes(self) -> list[str]:
        return [r.note for r in self.records if r.note]

    @property
    def section(self) -> list[str]:
        return self._first_by_preference().section

    @property
    def authors(self) -> list[str]:
        return next((r.authors for r in self.records if r.authors), [])

    @property
    def year(self) -> int | None:
        return next((r.year for r in self.records if r.year), None)

    @property
    def venue(self) -> str | None:
        return next((r.venue for r in self.records if r.venue), None)

    @property
    def pages(self) -> list[tuple[str, str, str]]:
        """(file, page label, text) of every PDF page or full text of the paper; a text found
        in two files (the same PDF under notes/ and in Zotero) only from the first."""
        seen: dict[str, tuple[str, str, str]] = {}
        for r in self.records:
            for f, label, text in r.pages:
                seen.setdefault(text, (f, label, text))
        return list(seen.values())

    @property
    def aliases(self) -> list[str]:
        """Other names the paper goes by, from every mention (no repeats)."""
        seen: dict[str, None] = {}
        for r in self.records:
            for a in r.aliases:
                seen.setdefault(a, None)
        return list(seen)

    @property
    def tags(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            for t in r.tags:
                seen.setdefault(t, None)
        return list(seen)


def _slug(title: str) -> str:
    norm = normalise_title(title)
    words = "-".join(norm.split()[:6])[:48].strip("-") or "untitled"
    digest = hashlib.sha1(norm.encode()).hexdigest()[:6]
    return f"{words}-{digest}"


def paper_id(records: list[Record]) -> str:
    """A stable id: the arXiv id, else the DOI, else a slug of the normalised title."""
    for r in records:
        if r.arxiv:
            return f"arxiv:{r.arxiv}"
    for r in records:
        if r.doi:
            return f"doi:{r.doi}"
    return _slug(records[0].title)


def merge_keys(r: Record) -> list[str]:
    """What a mention joins others by (see `merge`): two mentions sharing a key are one
    paper."""
    keys = []
    norm = normalise_title(r.title)
    if norm:
        keys.append("t:" + norm)
    if r.arxiv:
        keys.append("a:" + r.arxiv)
    if r.doi:
        keys.append("d:" + r.doi)
    linked = r.extra.get("note_file")
    if linked:
        keys.append("f:" + linked)
    elif r.extra.get("kind") == "paper-file":
        # A one-paper note file joins the list bullet that links to it.
        keys.append("f:" + r.file)
    return keys


def merge(records: list[Record]) -> list[Paper]:
    """Join mentions of the same paper: same normalised title, arXiv id or DOI, or a list
    bullet whose title links to a note file (`extra["note_file"]`) and that file's paper.

    Order is kept: papers come in the order of their first mention.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first: dict[str, int] = {}
    for i, r in enumerate(records):
        for k in merge_keys(r):
            if k in first:
                union(i, first[k])
            else:
                first[k] = i

    groups: dict[int, list[Record]] = {}
    for i, r in enumerate(records):
        groups.setdefault(find(i), []).append(r)
    papers = []
    used: set[str] = set()
    for _, recs in sorted(groups.items()):
        pid = paper_id(recs)
        base, n = pid, 2
        while pid in used:
            pid, n = f"{base}-{n}", n + 1
        used.add(pid)
        papers.append(Paper(id=pid, records=recs))
    return papers


_WS = re.compile(r"\s+")


def shorten(text: str, width: int = 100) -> str:
    """One line, at most `width` characters, cut at a word with an ellipsis."""
    text = _WS.sub(" ", text).strip()
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0]
    return cut + "…"
