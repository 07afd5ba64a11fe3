"""Readable text for results: tables for the terminal (JSON is built by the callers)."""

from __future__ import annotations

import re
import shutil
from typing import Any

from .library import shorten
from .store import PaperRow, place

# What a terminal would act on rather than show: escape sequences (CSI "ESC [ ... final",
# OSC/DCS/APC/PM/SOS strings up to BEL or "ESC \\", two-character ESC sequences), their
# one-byte C1 forms, and every other C0/C1 control character except tab and newline. A note
# can hold any of them (a title with "ESC ]0;...BEL" retitles the window), so everything
# printed as text passes through terminal_safe(); JSON output escapes them itself.
_TERMINAL_CONTROLS = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def terminal_safe(text: str) -> str:
    """`text` without anything a terminal would interpret (tab and newline are kept)."""
    return _TERMINAL_CONTROLS.sub("", text)


def _width() -> int:
    return max(60, min(shutil.get_terminal_size((110, 24)).columns, 160))


def hits_table(hits: list[Any], explain: bool = False) -> str:
    """Rank, score, title, section and file:line on one row; the note shortened below it."""
    width = _width()
    where_w = max(len(h.where) for h in hits)
    section_w = min(24, max((len(" / ".join(h.paper.section)) for h in hits), default=0))
    title_w = max(20, width - 4 - 8 - section_w - where_w - 6)
    lines = [
        f"{'#':>3}  {'score':>6}  {'title':<{title_w}}  {'section':<{section_w}}  where",
    ]
    indent = " " * 13
    for h in hits:
        p = h.paper
        section = shorten(" / ".join(p.section), section_w) if section_w else ""
        lines.append(
            f"{h.rank:>3}  {h.score:>6.3f}  {shorten(p.title, title_w):<{title_w}}  "
            f"{section:<{section_w}}  {h.where}"
        )
        note = " ".join(p.notes) or p.abstract
        if note:
            lines.append(indent + shorten(note, width - len(indent)))
        if explain and h.explain:
            lines.append(indent + explain_line(h.explain))
    return "\n".join(lines)


def explain_line(why: dict[str, Any]) -> str:
    parts = []
    for name in ("semantic", "keyword"):
        if name in why:
            parts.append(f"{name}: rank {why[name]['rank']} ({why[name]['score']:.3f})")
        else:
            parts.append(f"{name}: not in top")
    found = [n for n in ("semantic", "keyword") if n in why]
    by = {"semantic": "meaning", "keyword": "keywords"}
    parts.insert(0, "found by " + " and ".join(by[n] for n in found))
    if why.get("terms"):
        parts.append("terms: " + ", ".join(why["terms"]))
    return "; ".join(parts)


def papers_by_file(papers: list[PaperRow], manifest: dict[str, Any]) -> str:
    by_file: dict[str, list[tuple[int | None, PaperRow]]] = {}
    for p in papers:
        for f, line in p.sources:
            by_file.setdefault(place(f), []).append((line, p))
    width = _width()
    out = [
        f"{len(papers)} papers in {len(by_file)} files "
        f"(model {manifest.get('model')}, built {manifest.get('built_at')})"
    ]
    for f in sorted(by_file):
        entries = sorted(by_file[f], key=lambda e: e[0] or 0)
        out.append(f"\n{f}  ({len(entries)} papers)")
        for line, p in entries:
            section = " / ".join(p.section)
            text = shorten(p.title, width - 30 - min(len(section), 24))
            out.append(
                f"  {line or '':>5}  {text}" + (f"  [{shorten(section, 24)}]" if section else "")
            )
    return "\n".join(out)


def paper_details(p: PaperRow) -> str:
    out = [p.title, "=" * min(len(p.title), _width())]
    fields = [
        ("id", p.id),
        ("section", " / ".join(p.section)),
        ("authors", ", ".join(p.authors)),
        ("year", str(p.year or "")),
        ("venue", p.venue or ""),
        ("arXiv", p.arxiv or ""),
        ("DOI", p.doi or ""),
        ("url", p.url or ""),
        ("tags", ", ".join(p.tags)),
    ]
    out += [f"{k + ':':<9} {v}" for k, v in fields if v]
    out.append("in:       " + "; ".join(p.places))
    for note in p.notes:
        out += ["", "Note:", note]
    if p.abstract:
        out += ["", "Abstract:", p.abstract]
    return "\n".join(out)
