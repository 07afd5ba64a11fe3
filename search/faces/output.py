"""Every way results are printed: tables for the terminal and the `--json` shapes.

Both are built from the typed results of `search.api`, here and nowhere else, so the CLI and
the interfaces to come (MCP, web) print the same fields. The JSON shapes are documented in
docs/json.md, and tests pin their keys: add keys freely, never rename or drop one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.api import FileReading, Hit, IndexInfo, Paper, Source, Why
from search.library import Paths, shorten
from search.readers.records import Problem

if TYPE_CHECKING:
    from search.build import RebuildReport
    from search.evaluate import EvalReport
    from search.readers.fetch import FetchReport
    from search.readers.importers import ImportReport


# -- JSON ----------------------------------------------------------------------------------------


def dumps(data: Any) -> str:
    """The one JSON text format: UTF-8 as is, indented for people reading it. json escapes C0
    controls; DEL and C1 (U+009B is a one-character CSI) are escaped too."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_C1 = re.compile("[\x7f-\x9f]")


def _sources(sources: tuple[Source, ...]) -> list[dict[str, Any]]:
    return [{"file": s.file, "line": s.line} for s in sources]


def why_json(why: Why) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, r in (("semantic", why.semantic), ("keyword", why.keyword)):
        if r is not None:
            out[name] = {"rank": r.rank, "score": round(r.score, 4)}
    out["found_by"] = why.found_by
    if why.terms is not None:
        out["terms"] = list(why.terms)
    return out


def hit_json(hit: Hit) -> dict[str, Any]:
    """One result of `ask` or `similar`."""
    p = hit.paper
    out: dict[str, Any] = {
        "rank": hit.rank,
        "score": round(hit.score, 4),
        "relevance": round(hit.relevance, 4),
        "id": p.id,
        "title": p.title,
        "section": list(p.section),
        "note": p.note,
        "abstract": p.abstract,
        "arxiv": p.arxiv,
        "doi": p.doi,
        "url": p.url,
        "sources": _sources(p.sources),
        "where": p.where,
        "page": hit.page,
        "page_file": hit.page_file,
        "cite": hit.where,
    }
    if hit.why is not None:
        out["explain"] = why_json(hit.why)
    return out


def hits_json(hits: list[Hit]) -> list[dict[str, Any]]:
    return [hit_json(h) for h in hits]


# An agent reads every character it is sent: a brief hit's note and abstract are cut to this.
SNIPPET_CHARS = 300


def hit_brief_json(hit: Hit) -> dict[str, Any]:
    """A hit for an agent that will ask for more (`show`) only if it needs it: the keys of
    `hit_json` without the raw explanation, note and abstract cut to SNIPPET_CHARS, and no
    empty field (ten whole hits were 38 KB)."""
    out = hit_json(hit)
    out.pop("explain", None)
    for key in ("note", "abstract"):
        out[key] = shorten(out[key], SNIPPET_CHARS)
    return {k: v for k, v in out.items() if v not in (None, "", [])}


def paper_json(p: Paper) -> dict[str, Any]:
    """One paper in full (`show`): no rank or score, which mean nothing outside an answer."""
    return {
        "id": p.id,
        "title": p.title,
        "section": list(p.section),
        "authors": list(p.authors),
        "year": p.year,
        "venue": p.venue,
        "tags": list(p.tags),
        "note": p.note,
        "notes": list(p.notes),
        "abstract": p.abstract,
        "arxiv": p.arxiv,
        "doi": p.doi,
        "url": p.url,
        "sources": _sources(p.sources),
        "where": p.where,
    }


def paper_list_json(papers: list[Paper]) -> list[dict[str, Any]]:
    """What `list` prints: enough to find each paper again."""
    return [
        {
            "id": p.id,
            "title": p.title,
            **({"aliases": list(p.aliases)} if p.aliases else {}),
            "section": list(p.section),
            "sources": _sources(p.sources),
        }
        for p in papers
    ]


def file_readings_json(readings: list[FileReading]) -> list[dict[str, Any]]:
    """What `list --files` prints: how each note file was read, and why."""
    return [dataclasses.asdict(r) for r in readings]


def file_readings_table(readings: list[FileReading]) -> str:
    """One line per file: path, how it was read, (why); a reading on weak evidence is marked
    `unsure:` with what makes it so."""
    width = max((len(r.file) for r in readings), default=0)
    return "\n".join(
        f"{r.file:<{width}}  {r.reading or '?'}"
        + (f" ({r.reason})" if r.reason else "")
        + (f"  unsure: {r.unsure}" if r.unsure else "")
        for r in readings
    )


def _plain(value: Any) -> Any:
    """A report as JSON data: dataclasses as objects, paths and problems as strings."""
    if isinstance(value, Problem):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def rebuild_json(report: RebuildReport) -> dict[str, Any]:
    out: dict[str, Any] = _plain(report)
    return out


def import_json(report: ImportReport) -> dict[str, Any]:
    out: dict[str, Any] = _plain(report)
    return out


def fetch_json(report: FetchReport) -> dict[str, Any]:
    out: dict[str, Any] = _plain(report)
    return out


def eval_json(report: EvalReport) -> dict[str, Any]:
    """`papers eval --json`: the corpus, then per mode its scores, rounded for reading."""
    return {
        "dataset": report.dataset,
        "split": report.split,
        "documents": report.documents,
        "papers": report.papers,
        "queries": report.queries,
        "model": report.model,
        "build_seconds": report.build_seconds,
        "modes": {
            mode: {
                **{k: round(v, 4) for k, v in r.scores.items()},
                "queries": r.queries,
                "seconds": round(r.seconds, 3),
                "qps": round(r.qps, 1),
            }
            for mode, r in report.modes.items()
        },
    }


def eval_table(report: EvalReport) -> str:
    """`papers eval`: one line per mode."""
    lines = [
        f"{report.dataset} ({report.split}): {report.documents} documents, "
        f"{report.queries} queries, model {report.model}",
        "",
        f"{'mode':<9} {'nDCG@10':>8} {'Recall@100':>11} {'MRR@10':>8} {'queries/s':>10}",
    ]
    for mode, r in report.modes.items():
        m = r.scores
        lines.append(
            f"{mode:<9} {m['ndcg@10']:>8.4f} {m['recall@100']:>11.4f} {m['mrr@10']:>8.4f} "
            f"{r.qps:>10.1f}"
        )
    return "\n".join(lines)


def zotero_json(data_dir: Path, config: Path) -> dict[str, str]:
    """What `import --zotero DIR` recorded: the Zotero directory and the config file."""
    return {"zotero": str(data_dir), "config": str(config)}


def paths_json(paths: Paths) -> dict[str, str]:
    """Where the library, its notes and its index are (`where`)."""
    return {"library": str(paths.root), "notes": str(paths.notes), "index": str(paths.index)}


# -- tables ---------------------------------------------------------------------------------------

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


# A title is never cut below this many characters: paths, sections and notes give way first.
MIN_TITLE = 50
# What stands before the title on a result row: rank and relevance.
_LEAD = 16


def plural(n: int, word: str) -> str:
    """`1 paper`, `2 papers`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cut_path(place: str, width: int) -> str:
    """`place` in at most `width` characters, cut at the start so the file name and line stay."""
    return place if len(place) <= width else "…" + place[len(place) - width + 1 :]


def hits_table(hits: list[Hit], explain: bool = False) -> str:
    """Rank, score, title, section and file:line on one row when they fit; else file:line (and
    the section) on a line of their own under the title. The note, shortened, below."""
    width = _width()
    room = width - _LEAD
    where_w = max(len(h.where) for h in hits)
    section_w = min(24, max((len(" / ".join(h.paper.section)) for h in hits), default=0))
    title_need = max(len(h.paper.title) for h in hits)
    section_part = section_w + 2 if section_w else 0
    # file:line stays on the row only if the title keeps MIN_TITLE characters (or all of it).
    inline = min(title_need, MIN_TITLE) + section_part + 2 + where_w <= room
    if not inline and room - section_part < min(title_need, MIN_TITLE):
        section_w = section_part = 0  # the section joins file:line below
    title_w = min(title_need, room - section_part - (2 + where_w if inline else 0))
    title_w = max(title_w, min(title_need, 20))
    header = f"{'#':>3}  {'relevance'}  {'title':<{title_w}}"
    if section_part:
        header += f"  {'section':<{section_w}}"
    lines = [(header + "  where") if inline else header.rstrip()]
    indent = " " * _LEAD
    for h in hits:
        p = h.paper
        row = f"{h.rank:>3}  {h.relevance:>9.2f}  {shorten(p.title, title_w):<{title_w}}"
        if section_part:
            row += f"  {shorten(' / '.join(p.section), section_w):<{section_w}}"
        lines.append((row + f"  {h.where}") if inline else row.rstrip())
        if not inline:
            under, section = h.where, " / ".join(p.section)
            if not section_part and section and len(section) + 2 + len(under) <= room:
                under = f"{section}  {under}"
            lines.append(indent + cut_path(under, room))
        note = " ".join(p.notes) or p.abstract
        if note:
            lines.append(indent + shorten(note, room))
        if explain and h.why is not None:
            lines.append(indent + f"score {h.score:.3f}; " + explain_line(h.why))
    return "\n".join(lines)


def explain_line(why: Why) -> str:
    parts = []
    found = []
    for name, r in (("semantic", why.semantic), ("keyword", why.keyword)):
        if r is not None:
            parts.append(f"{name}: rank {r.rank} ({r.score:.3f})")
            found.append(name)
        else:
            parts.append(f"{name}: not in top")
    by = {"semantic": "meaning", "keyword": "keywords"}
    parts.insert(0, "found by " + " and ".join(by[n] for n in found))
    if why.terms:
        parts.append("terms: " + ", ".join(why.terms))
    return "; ".join(parts)


def papers_by_file(papers: list[Paper], info: IndexInfo) -> str:
    by_file: dict[str, list[tuple[int | None, Paper]]] = {}
    for p in papers:
        for s in p.sources:
            by_file.setdefault(s.file, []).append((s.line, p))
    room = _width() - 9  # "  12345  " before each title
    out = [
        f"{plural(len(papers), 'paper')} in {plural(len(by_file), 'file')} "
        f"(model {info.model}, built {info.built_at})"
    ]
    for f in sorted(by_file):
        entries = sorted(by_file[f], key=lambda e: e[0] or 0)
        out.append(f"\n{f}  ({plural(len(entries), 'paper')})")
        for line, p in entries:
            section = shorten(" / ".join(p.section), 24)
            # A section keeps at least 8 columns (and its brackets) beside the title.
            title = shorten(p.title, room - (12 if section else 0))
            # The section gives way to the title: cut to what is left, dropped below 8 columns.
            left = room - len(title) - 4
            section = shorten(section, left) if section and left >= 8 else ""
            out.append(f"  {line or '':>5}  {title}" + (f"  [{section}]" if section else ""))
    return "\n".join(out)


def paper_details(p: Paper) -> str:
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


# -- the catalog's tables (`ask --catalog`, `similar --catalog`, `recommend`) ----------------------


# What stands before a catalog title: rank and relevance ("  1  0.42  ").
_CATALOG_LEAD = 11


def _catalog_row(rank: int, relevance: float, title: str, tail: str) -> list[str]:
    """rank, relevance (0-1) and the title as wide as the terminal leaves it, then the date
    (and key); when they would cut the title below MIN_TITLE, they go on a line of their own."""
    width, score = _width(), min(1.0, max(0.0, relevance))
    lead = f"{rank:>3}  {score:>4.2f}  "
    room = width - len(lead) - (len(tail) + 2 if tail else 0)
    if room >= min(len(title), MIN_TITLE):
        return [(lead + shorten(title, room) + (f"  {tail}" if tail else "")).rstrip()]
    return [lead + shorten(title, max(MIN_TITLE, width - len(lead))), " " * len(lead) + tail]


def catalog_hits_table(hits: list[Any]) -> str:
    """Catalog hits: a row per paper (its date and catalog key after the title), its abstract
    shortened below."""
    lines = []
    for h in hits:
        p = h.paper
        when = p.date or (str(p.year) if p.year else "")
        lines += _catalog_row(h.rank, h.score, p.title, f"{when}  {p.key}".strip())
        if p.abstract:
            lines.append(
                " " * _CATALOG_LEAD + shorten(p.abstract, max(40, _width() - _CATALOG_LEAD))
            )
    return "\n".join(lines)


def recommendations_table(recommendations: list[Any]) -> str:
    """Recommended catalog papers: a row per paper, and the paper of yours it is closest to."""
    lines = []
    for r in recommendations:
        p = r.paper
        when = p.date or (str(p.year) if p.year else "")
        lines += _catalog_row(r.rank, r.closest_similarity, p.title, when)
        closest = f"({r.closest.where})"
        room = max(30, _width() - _CATALOG_LEAD - len("closest to: ") - len(closest) - 1)
        lines.append(f"{'':{_CATALOG_LEAD}}closest to: {shorten(r.closest.title, room)} {closest}")
    return "\n".join(lines)
