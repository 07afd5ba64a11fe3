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
    tokens = doc.tokens
    headings = [u for u in units if u.kind == "heading"]
    heading_entries = _heading_entries(headings, every_list)
    if every_list and not any(u.entries for u in units if u.kind in ("list", "table")):
        # Told it is a list, with no bullets or table rows: the papers are its headings
        # (those of the most common level, "## Paper" under "# My notes").
        named = [u for u in headings if u.entry is not None and not u.note_heading]
        levels = [u.level for u in named]
        common = max(set(levels), key=lambda lv: (levels.count(lv), lv), default=0)
        heading_entries = [u for u in named if u.level == common]
    entry_ids = {id(u) for u in heading_entries}
    entry_levels = {u.level for u in heading_entries}
    skip_h1 = (
        bool(headings)
        and headings[0].level == 1
        and not any(h.level == 1 for h in headings[1:])
        and id(headings[0]) not in entry_ids
    )
    has_evidence = any(_evidence_list(u) for u in units if u.kind in ("list", "table")) or bool(
        heading_entries
    )

    # Lists of bare titles count beside linked or tagged ones when they hold more entries:
    # a plain reading list stays one when a tagged entry is added (one line must never
    # change how the rest of a file is read), and a few plain bullets (a table of
    # contents, "about me") beside a linked list stay out of it.
    plain_too = not has_evidence or _plain_outweighs(units, heading_entries)

    def contributes(u: _Unit) -> bool:
        if every_list or _evidence_list(u):
            return True
        return plain_too and _plain_list(u)

    stack: list[tuple[int, str]] = []
    label: str | None = None
    drafts: list[_Draft] = []
    current: _Draft | None = None
    entry_level: int | None = None  # level of the heading entry whose note we are in

    def section() -> list[str]:
        return [text for _, text in stack] + ([label] if label else [])

    for u in units:
        i, j = u.i, u.j
        if u.kind == "heading":
            if entry_level is not None and u.level > entry_level and current is not None:
                current.chunks.append(u.text)  # a sub-heading inside a paper's note
                continue
            current, label, entry_level = None, None, None
            if skip_h1 and u is headings[0]:
                continue
            if id(u) in entry_ids and u.entry is not None:
                while stack and stack[-1][0] >= u.level:
                    stack.pop()
                u.entry.record.section = [t for _, t in stack]
                drafts.append(u.entry)
                current, entry_level = u.entry, u.level
                continue
            while stack and stack[-1][0] >= u.level:
                stack.pop()
            if u.level not in entry_levels or not heading_entries:
                stack.append((u.level, u.text))
        elif entry_level is not None and current is not None:
            current.chunks.append(_plain_blocks(tokens, i, j))
        elif u.kind in ("list", "table"):
            if not contributes(u):
                current = None
                continue
            for d in u.entries:
                if not d.record.title:
                    doc.problems.append(
                        Problem(doc.rel, d.record.line, "bullet without title text; skipped")
                    )
                    current = None
                    continue
                d.record.section = section() + d.record.section
                drafts.append(d)
                current = d
            if u.kind == "table":
                current = None
        elif u.kind == "para":
            inline = tokens[i + 1]
            plain = _plain_blocks(tokens, i, j)
            if _is_label(inline, plain):
                label, current = clean_text(_norm_space(plain).rstrip(":").strip()), None
            elif current is not None:
                current.chunks.append(plain)
            elif _has_link(inline) and has_evidence and _FAKE_BULLET.match(inline.content):
                doc.problems.append(
                    Problem(
                        doc.rel,
                        doc.line(tokens[i]),
                        "text with links outside any bullet, not read as a paper (a bullet "
                        "needs a space after its '-', '*' or '+')",
                    )
                )
        elif u.kind == "hr":
            current = None
        elif current is not None:
            # Blockquotes, code and other blocks after a bullet are notes on it.
            current.chunks.append(_plain_blocks(tokens, i, j))
    records = []
    for d in drafts:
        d.record.note = _join_note(d.chunks)
        records.append(d.record)
    return records
