"""Read a whole notes folder: each file (as papers.toml says), then what files say of each other.

Some decisions need every file's reading, so they are a second pass over the per-file results
(which a rebuild may take from its cache):

- A file linked as the note of an entry in a list elsewhere is one paper, whatever its inside
  looks like (key points as bullets, a table of results). A link that is broken only by case,
  or by the wrong folder or file name, still joins when exactly one file fits: the same path
  ignoring case, else the only note file of that name, else the only note in that folder.
- ... unless that file is a reading list itself (LIST_OF_PAPERS entries with evidence): then
  the link is a table of contents (`- [Vision](vision.md)`), and the entry linking it, if it
  links no paper, is left out.
- A file with no title or entries of its own (prose only, or just a URL) that sits among
  one-paper notes is one paper too, titled by its file name.

Only the first reading of each file (on its own, or as papers.toml says) decides links, so the
outcome never depends on the order of files or on what a cache held.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.readers.config import Config
from search.readers.records import FileResult, Problem, Record

# read(path, rel, read_as) -> FileResult
Reader = Callable[[Path, str, str], FileResult]
# cache(rel, read_as) -> the result a previous build stored, or None
Cache = Callable[[str, str], FileResult | None]

_MARKDOWN = (".md", ".markdown")
_README_STEMS = {"readme", "index", "_index"}
_FOLDER_NOTES = _README_STEMS | {"summary", "notes", "note"}
LIST_OF_PAPERS = 6  # entries a linked file needs to stay a list
AMONG_PAPERS = "no title of its own"
# How a reader says a file holds no text of its own (only links, tags or nothing): such a file
# is not made a paper by its neighbours. Here, not in the Markdown reader, so that a rebuild
# loads markdown-it only when it reads a note.
NO_TEXT = "no text of its own"


@dataclass
class FileReading:
    """How one file was read: on its own, and (when other files say so) as one paper."""

    path: Path
    rel: str
    mode: str  # read_as from papers.toml: "auto", "list" or "paper"
    base: FileResult
    promoted: FileResult | None = None
    promoted_why: str = ""
    from_cache: bool = False
    # A list whose entries that only link other lists were dropped (derived, never parsed).
    trimmed: FileResult | None = None

    @property
    def final(self) -> FileResult:
        if self.promoted is not None:
            return self.promoted
        return self.trimmed if self.trimmed is not None else self.base


def read_notes(
    files: list[tuple[Path, str]],
    config: Config,
    read: Reader,
    cached: Cache | None = None,
    cached_promoted: Cache | None = None,
) -> list[FileReading]:
    """Read every file of `files` ((path, path under notes/)) and apply the cross-file rules.

    `cached` / `cached_promoted` give a previous build's results for a file whose content is
    unchanged (keyed by how it was read), so only changed files are parsed again."""
    readings = []
    for path, rel in files:
        mode = config.read_as(rel)
        result = cached(rel, mode) if cached is not None else None
        from_cache = result is not None
        if result is None:
            result = read(path, rel, mode)
        if not result.reading:
            result.reading = "data" if result.records or not result.problems else "skipped"
        if mode != "auto":
            rule = config.rule_for(rel)
            glob = rule.glob if rule is not None else "?"
            result.reason = f'papers.toml: read_as = "{mode}" (glob "{glob}")'
        readings.append(FileReading(path, rel, mode, result, from_cache=from_cache))

    resolve = _resolver([r.rel for r in readings])
    linked: dict[str, str] = {}
    for r in readings:
        if not r.base.reading.startswith("list"):
            continue
        for rec in r.base.records:
            target = rec.extra.get("note_file")
            found = resolve(target) if target else None
            if found and found != r.rel:
                linked.setdefault(found, f"{r.rel}:{rec.line}")
    promote: dict[str, str] = {}
    lists = {r.rel for r in readings if _is_list_of_papers(r.base)}
    for r in readings:
        if r.mode != "auto" or not r.rel.lower().endswith(_MARKDOWN):
            continue
        if r.rel in linked and r.base.reading != "one paper" and r.rel not in lists:
            promote[r.rel] = f"linked as a note from {linked[r.rel]}"
    promote.update(_among_papers(readings, promote))
    for r in readings:
        why = promote.get(r.rel)
        if why is None:
            continue
        result = cached_promoted(r.rel, "paper") if cached_promoted is not None else None
        if result is None:
            result = read(r.path, r.rel, "paper")
        result.reason = why
        if why.startswith(AMONG_PAPERS):
            result.unsure = "no title of its own: titled by its file name, as its neighbours are"
        r.promoted, r.promoted_why = result, why
    # "- [Vision](vision.md)" in a README that links its own reading lists: a link to a list,
    # not a paper (unless it also links a paper).
    for r in readings:
        if not r.base.reading.startswith("list") or r.rel in promote:
            continue
        kept = [
            rec
            for rec in r.base.records
            if rec.url
            or rec.arxiv
            or rec.doi
            or resolve(rec.extra.get("note_file") or "") not in lists
        ]
        if len(kept) < len(r.base.records):
            n, dropped = len(kept), len(r.base.records) - len(kept)
            r.trimmed = dataclasses.replace(
                r.base,
                records=kept,
                reading=f"list of {n} paper{'s' if n != 1 else ''}",
                reason=f"{r.base.reason}; {dropped} link{'s' if dropped != 1 else ''} to other "
                "lists left out",
            )
    return readings


def _is_list_of_papers(result: FileResult) -> bool:
    """A file that is a reading list on its own: linking it as a note does not make it one
    paper (a README linking `vision.md`, a list of 40 papers, is a table of contents)."""
    return result.reading.startswith("list") and result.entries >= LIST_OF_PAPERS


def _among_papers(readings: list[FileReading], promote: dict[str, str]) -> dict[str, str]:
    """Skipped notes in a folder where most notes are one paper each: one paper too."""
    by_folder: dict[str, list[FileReading]] = {}
    for r in readings:
        by_folder.setdefault(posixpath.dirname(r.rel), []).append(r)
    out = {}
    for folder, group in by_folder.items():
        papers = sum(r.base.reading == "one paper" or r.rel in promote for r in group)
        for r in group:
            stem = posixpath.splitext(posixpath.basename(r.rel))[0].lower()
            if (
                r.mode == "auto"
                and r.base.reading == "skipped"
                and not r.base.problems
                and not r.base.reason.startswith(NO_TEXT)
                and r.rel.lower().endswith(_MARKDOWN)
                and stem not in _README_STEMS
                and papers >= 2
                and 3 * papers >= 2 * (len(group) - 1)
            ):
                where = f"{folder}/" if folder else "the notes folder"
                out[r.rel] = f"{AMONG_PAPERS}, among {papers} one-paper notes in {where}"
    return out


def _resolver(rels: list[str]) -> Callable[[str], str | None]:
    """Find the note file a link means: exact, else ignoring case, else the only note of that
    name, else the only note in that folder."""
    exact = set(rels)
    lower: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    by_folder: dict[str, list[str]] = {}
    for rel in rels:
        if not rel.lower().endswith(_MARKDOWN):
            continue
        lower.setdefault(rel.lower(), []).append(rel)
        by_name.setdefault(posixpath.basename(rel).lower(), []).append(rel)
        by_folder.setdefault(_folder_key(posixpath.dirname(rel)), []).append(rel)

    def resolve(target: str) -> str | None:
        if target.endswith("/"):
            return folder_note(target.rstrip("/"))
        if target in exact:
            return target
        for table, key in (
            (lower, target.lower()),
            (by_name, posixpath.basename(target).lower()),
            (by_folder, _folder_key(posixpath.dirname(target))),
        ):
            found = table.get(key, [])
            if len(found) == 1 and (table is not by_folder or posixpath.dirname(target)):
                return found[0]
        return None

    def folder_note(folder: str) -> str | None:
        """A link to a folder means its README.md, index.md or summary.md, else its only note."""
        inside = by_folder.get(_folder_key(folder), [])
        named = [
            r
            for r in inside
            if posixpath.splitext(posixpath.basename(r))[0].lower() in _FOLDER_NOTES
        ]
        if len(named) == 1:
            return named[0]
        return inside[0] if len(inside) == 1 else None

    return resolve


def link_resolver(rels: list[str]) -> Callable[[str], str | None]:
    """How note links resolve among these files: a rebuild compares it before and after
    files come or go."""
    return _resolver(rels)


def _folder_key(folder: str) -> str:
    return "/".join(part.strip().lower() for part in folder.split("/"))


def final_records(readings: list[FileReading]) -> list[Record]:
    """Every record, with note-file links pointing at the file they resolve to (so a bullet
    and the note it links join in `merge`)."""
    resolve = _resolver([r.rel for r in readings])
    return [rec for r in readings for rec in resolve_links(r.final.records, resolve)]


def resolve_links(records: Iterable[Record], resolve: Callable[[str], str | None]) -> list[Record]:
    """`records` with note-file links pointing at the file they resolve to."""
    out = []
    for rec in records:
        target = rec.extra.get("note_file")
        found = resolve(target) if target else None
        if found and found != target:
            rec = dataclasses.replace(rec, extra={**rec.extra, "note_file": found})
        out.append(rec)
    return out


def final_problems(readings: list[FileReading]) -> list[Problem]:
    return [p for r in readings for p in r.final.problems]


def summary(r: FileReading) -> dict[str, Any]:
    """One file's reading as stored and shown by `papers list --files`."""
    final = r.final
    return {
        "file": r.rel,
        "reading": final.reading,
        "reason": final.reason,
        "papers": len(final.records),
        "mode": r.mode,
        "unsure": final.unsure,
    }


def result_to_json(result: FileResult) -> dict[str, Any]:
    return {
        "records": [dataclasses.asdict(x) for x in result.records],
        "problems": [dataclasses.asdict(p) for p in result.problems],
        "reading": result.reading,
        "reason": result.reason,
        "entries": result.entries,
        "unsure": result.unsure,
    }


def result_from_json(data: dict[str, Any]) -> FileResult:
    return FileResult(
        records=[Record(**x) for x in data.get("records", [])],
        problems=[Problem(**p) for p in data.get("problems", [])],
        reading=str(data.get("reading", "")),
        reason=str(data.get("reason", "")),
        entries=int(data.get("entries", 0)),
        unsure=str(data.get("unsure", "")),
    )
