"""A list of papers: the records of the entries that list papers, each with its section and the
note that follows it up to the next entry or heading."""

from __future__ import annotations

from search.readers.markdown.blocks import (
    _FAKE_BULLET,
    Document,
    _has_link,
    _is_label,
    _join_note,
    _norm_space,
    _plain_blocks,
)
from search.readers.markdown.decision import _plain_outweighs
from search.readers.markdown.evidence import (
    _Draft,
    _evidence_list,
    _heading_entries,
    _plain_list,
    _Unit,
)
from search.readers.records import (
    Problem,
    Record,
    clean_text,
)


def _paper_list(doc: Document, units: list[_Unit], every_list: bool = False) -> list[Record]:
    """Records of the entries: items of the lists and rows of the tables that list papers,
    and headings that are paper entries. Headings are sections; what follows an entry up
    to the next entry or heading is the note on it."""
    headings = [u for u in units if u.kind == "heading"]
    heading_entries = _heading_entries(headings, every_list)
    if every_list and not any(u.entries for u in units if u.kind in ("list", "table")):
        # Told it is a list, with no bullets or table rows: the papers are its headings
        # (those of the most common level, "## Paper" under "# My notes").
        named = [u for u in headings if u.entry is not None and not u.note_heading]
        levels = [u.level for u in named]
        common = max(set(levels), key=lambda lv: (levels.count(lv), lv), default=0)
        heading_entries = [u for u in named if u.level == common]
    walk = _ListWalk(doc, units, headings, heading_entries, every_list)
    for u in units:
        if u.kind == "heading":
            walk.heading(u)
        elif walk.entry_level is not None and walk.current is not None:
            walk.current.chunks.append(_plain_blocks(doc.tokens, u.i, u.j))
        elif u.kind in ("list", "table"):
            walk.entries(u)
        elif u.kind == "para":
            walk.paragraph(u)
        elif u.kind == "hr":
            walk.current = None
        elif walk.current is not None:
            # Blockquotes, code and other blocks after a bullet are notes on it.
            walk.current.chunks.append(_plain_blocks(doc.tokens, u.i, u.j))
    records = []
    for d in walk.drafts:
        d.record.note = _join_note(d.chunks)
        records.append(d.record)
    return records


class _ListWalk:
    """The walk through a reading list's blocks: the sections open at each point, the entry
    whose note the next blocks are, and the entries found so far."""

    def __init__(
        self,
        doc: Document,
        units: list[_Unit],
        headings: list[_Unit],
        heading_entries: list[_Unit],
        every_list: bool,
    ) -> None:
        self.doc = doc
        self.headings = headings
        self.heading_entries = heading_entries
        self.entry_ids = {id(u) for u in heading_entries}
        self.entry_levels = {u.level for u in heading_entries}
        self.every_list = every_list
        # A lone H1 above every other heading names the file, not a section.
        self.skip_h1 = (
            bool(headings)
            and headings[0].level == 1
            and not any(h.level == 1 for h in headings[1:])
            and id(headings[0]) not in self.entry_ids
        )
        lists = [u for u in units if u.kind in ("list", "table")]
        self.has_evidence = any(map(_evidence_list, lists)) or bool(heading_entries)
        # Lists of bare titles count beside linked or tagged ones when they hold more
        # entries: a plain reading list stays one when a tagged entry is added (one line
        # must never change how the rest of a file is read), and a few plain bullets (a
        # table of contents, "about me") beside a linked list stay out of it.
        self.plain_too = not self.has_evidence or _plain_outweighs(units, heading_entries)
        self.stack: list[tuple[int, str]] = []
        self.label: str | None = None
        self.drafts: list[_Draft] = []
        self.current: _Draft | None = None
        self.entry_level: int | None = None  # level of the heading entry whose note we are in

    def contributes(self, u: _Unit) -> bool:
        if self.every_list or _evidence_list(u):
            return True
        return self.plain_too and _plain_list(u)

    def section(self) -> list[str]:
        return [text for _, text in self.stack] + ([self.label] if self.label else [])

    def heading(self, u: _Unit) -> None:
        """A heading: a sub-heading of an entry's note, an entry, or a section."""
        if self.entry_level is not None and u.level > self.entry_level and self.current:
            self.current.chunks.append(u.text)  # a sub-heading inside a paper's note
            return
        self.current, self.label, self.entry_level = None, None, None
        if self.skip_h1 and u is self.headings[0]:
            return
        while self.stack and self.stack[-1][0] >= u.level:
            self.stack.pop()
        if id(u) in self.entry_ids and u.entry is not None:
            u.entry.record.section = [t for _, t in self.stack]
            self.drafts.append(u.entry)
            self.current, self.entry_level = u.entry, u.level
        elif u.level not in self.entry_levels or not self.heading_entries:
            self.stack.append((u.level, u.text))

    def entries(self, u: _Unit) -> None:
        """A list or table: its entries, if it lists papers."""
        if not self.contributes(u):
            self.current = None
            return
        for d in u.entries:
            if not d.record.title:
                self.doc.problems.append(
                    Problem(self.doc.rel, d.record.line, "bullet without title text; skipped")
                )
                self.current = None
                continue
            d.record.section = self.section() + d.record.section
            self.drafts.append(d)
            self.current = d
        if u.kind == "table":
            self.current = None

    def paragraph(self, u: _Unit) -> None:
        """A paragraph: a label over the next bullets ("NLP"), or the note on the entry
        before it; text with links that only looks like a bullet is reported."""
        tokens = self.doc.tokens
        inline = tokens[u.i + 1]
        plain = _plain_blocks(tokens, u.i, u.j)
        if _is_label(inline, plain):
            self.label, self.current = clean_text(_norm_space(plain).rstrip(":").strip()), None
        elif self.current is not None:
            self.current.chunks.append(plain)
        elif _has_link(inline) and self.has_evidence and _FAKE_BULLET.match(inline.content):
            self.doc.problems.append(
                Problem(
                    self.doc.rel,
                    self.doc.line(tokens[u.i]),
                    "text with links outside any bullet, not read as a paper (a bullet "
                    "needs a space after its '-', '*' or '+')",
                )
            )
