"""The story of one Markdown note: blocks (blocks.py), evidence per entry (evidence.py), the
decision list / one paper / not a paper (decision.py), then the records of a list
(reading_list.py) or of one paper (one_paper.py)."""

from __future__ import annotations

from search.readers.markdown.blocks import Document
from search.readers.markdown.decision import _decide
from search.readers.markdown.evidence import _units
from search.readers.markdown.one_paper import _paper_file
from search.readers.markdown.reading_list import _paper_list
from search.readers.records import (
    FileResult,
    Problem,
)


def _problem(rel: str, line: int | None, message: str) -> FileResult:
    return FileResult(
        records=[], problems=[Problem(rel, line, message)], reading="skipped", reason=message
    )


READ_AS = ("auto", "list", "paper")


def parse_markdown(text: str, rel: str, read_as: str = "auto") -> FileResult:
    """The papers in one Markdown note (see the module docstring for how its shape is
    decided). `read_as` "list" or "paper" skips the guess. Every record keeps `rel` and its
    1-based line; the result says how the file was read and why. Never raises."""
    try:
        return _run(Document(text, rel), read_as)
    except Exception as exc:  # a note must never stop a rebuild; say what went wrong
        result = _problem(rel, None, f"internal error while parsing ({type(exc).__name__}: {exc})")
        result.reading, result.reason = "skipped", "internal error while parsing"
        return result


def _run(doc: Document, read_as: str = "auto") -> FileResult:
    units = _units(doc)
    if read_as == "paper":
        kind, reason = "paper", "read as one paper"
    elif read_as == "list":
        kind, reason = "list", "read as a list"
    else:
        kind, reason = _decide(doc, units)
    if kind == "paper":
        records = _paper_file(doc, forced=read_as == "paper" or doc.titled_by_name)
    elif kind == "list":
        records = _paper_list(doc, units, every_list=read_as == "list")
    else:
        records = []
    if kind == "list":
        reading = f"list of {len(records)} paper{'s' if len(records) != 1 else ''}"
    elif kind == "paper" and records:
        reading = "one paper"
    else:
        reading = "skipped"
    entries = (
        sum(d.evidence for u in units if u.kind in ("list", "table") for d in u.entries)
        if kind == "list"
        else 0
    )
    unsure = doc.unsure if read_as == "auto" and records else ""
    return FileResult(
        records=records,
        problems=doc.problems,
        reading=reading,
        reason=reason,
        entries=entries,
        unsure=unsure,
    )
