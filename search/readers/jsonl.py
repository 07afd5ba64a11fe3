"""Read JSON-lines paper lists: the canonical format `papers import` writes, the arXiv metadata
snapshot, BEIR corpora and generic objects (OpenAlex, Semantic Scholar), one Record per line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from search.readers.fields import (
    decode_accents,
    one_line,
    opt_str,
    read_text,
    str_list,
    unwrap,
    year_of,
)
from search.readers.records import (
    SURROGATE_MESSAGE,
    FileResult,
    Problem,
    Record,
    clean_text,
    link_of,
    normalise_doi,
    parse_arxiv_id,
    scrub_surrogates,
)

# Keys of the canonical JSON-lines format, in the order they are written.
CANONICAL_KEYS = (
    "title",
    "abstract",
    "authors",
    "year",
    "venue",
    "arxiv",
    "doi",
    "url",
    "id",
    "note",
    "tags",
    "source",
)
# Lines with this status (written by the abstract fetcher for papers it could not find) carry
# no information about a paper, so they are not records.
SKIP_STATUSES = frozenset({"not_found", "no_abstract"})


_ARXIV_SNAPSHOT_KEYS = ("versions", "update_date", "authors_parsed", "submitter")
# Keys of the generic format that map to Record fields (the rest go to Record.extra).
_GENERIC_KEYS = frozenset(CANONICAL_KEYS) | {"pdf", "status"}


def _arxiv_snapshot_record(obj: dict[str, Any], rel: str, line: int) -> Record:
    title = one_line(decode_accents(str(obj.get("title") or "")))
    abstract = clean_text(decode_accents(unwrap(str(obj.get("abstract") or ""))))
    authors: list[str] = []
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list):
        # authors_parsed ([last, first, suffix], already decoded) can list thousands of
        # names, so this loop stays minimal.
        for parts in parsed:
            if isinstance(parts, list) and len(parts) >= 2:
                name = " ".join(
                    f"{parts[1]} {parts[0]} {parts[2] if len(parts) > 2 else ''}".split()
                )
                if name:
                    authors.append(name)
    if not authors:
        authors = str_list(decode_accents(str(obj.get("authors") or "")), r",|\band\b")
    year = None
    versions = obj.get("versions")
    # The first version's date is when the paper appeared; update_date is only a fallback.
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        year = year_of(versions[0].get("created"))
    if year is None:
        year = year_of(obj.get("update_date"))
    raw_id = str(obj.get("id") or "")
    arxiv = parse_arxiv_id(raw_id)
    extra = {"id": raw_id, "source": "arxiv"} if raw_id else {"source": "arxiv"}
    journal = opt_str(obj.get("journal-ref"))
    if journal:
        extra["journal_ref"] = one_line(journal)
    return Record(
        title=title,
        file=rel,
        line=line,
        abstract=abstract,
        arxiv=arxiv,
        doi=normalise_doi(opt_str(obj.get("doi"))),
        url=f"https://arxiv.org/abs/{raw_id}" if raw_id else None,
        authors=authors,
        year=year,
        tags=str_list(obj.get("categories"), r"\s+"),
        extra=extra,
    )


def _beir_record(obj: dict[str, Any], rel: str, line: int) -> Record:
    extra = {"id": str(obj["_id"]), "source": "beir"}
    return Record(
        title=one_line(str(obj.get("title") or "")),
        file=rel,
        line=line,
        abstract=clean_text(str(obj.get("text") or "")),
        extra=extra,
    )


def _generic_record(obj: dict[str, Any], rel: str, line: int, default_source: str) -> Record:
    extra: dict[str, str] = {}
    for key, value in obj.items():
        if key in _GENERIC_KEYS or key.startswith("_"):
            continue
        text = opt_str(value)
        if text is not None:
            extra[key] = text
    ext_id = opt_str(obj.get("id"))
    if ext_id:
        extra["id"] = ext_id
    extra["source"] = opt_str(obj.get("source")) or default_source
    arxiv_raw = opt_str(obj.get("arxiv"))
    url = link_of(obj) or opt_str(obj.get("url")) or opt_str(obj.get("pdf"))
    arxiv = parse_arxiv_id(arxiv_raw) if arxiv_raw else None
    if arxiv is None and url and "arxiv.org/" in url:
        arxiv = parse_arxiv_id(url)
    authors = obj.get("authors")
    note = obj.get("note")
    abstract = obj.get("abstract")
    venue = opt_str(obj.get("venue"))
    return Record(
        title=one_line(str(obj.get("title") or "")),
        file=rel,
        line=line,
        note=clean_text(note) if isinstance(note, str) else "",
        abstract=clean_text(abstract) if isinstance(abstract, str) else "",
        arxiv=arxiv,
        doi=normalise_doi(opt_str(obj.get("doi"))),
        url=url,
        authors=str_list(authors, r",|\band\b") if isinstance(authors, str) else str_list(authors),
        year=year_of(obj.get("year")),
        venue=one_line(venue) if venue else None,
        tags=str_list(obj.get("tags")),
        extra=extra,
    )


def record_from_object(
    obj: dict[str, Any], rel: str, line: int, default_source: str | None = None
) -> Record | None:
    """One JSON object as a Record, whichever known format it is in; None for a skip line.

    Raises ValueError for a title that is not text (a list, an object, a number...): turned
    into a string it would be a paper called "['a', 'b']"."""
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"the title is {_json_kind(title)}, not text; skipped")
    if "_id" in obj and "text" in obj:
        return _beir_record(obj, rel, line)
    if "abstract" in obj and "id" in obj and any(k in obj for k in _ARXIV_SNAPSHOT_KEYS):
        return _arxiv_snapshot_record(obj, rel, line)
    if obj.get("status") in SKIP_STATUSES:
        return None
    return _generic_record(obj, rel, line, default_source or rel.rsplit("/", 1)[-1])


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def scrub_json_line(line: str | bytes, obj: Any) -> tuple[Any, bool]:
    """`obj` decoded from `line`, with lone surrogates (`\\ud800`, which no UTF-8 text can
    hold: SQLite and every writer refuse them) replaced by U+FFFD; and whether any was."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    if not SURROGATE_ESCAPE.search(text):
        return obj, False
    return scrub_json(obj)


def scrub_json(value: Any) -> tuple[Any, bool]:
    """A decoded JSON value with lone surrogates replaced by U+FFFD, and whether any was."""
    if isinstance(value, str):
        fixed = scrub_surrogates(value)
        return fixed, fixed is not value
    if isinstance(value, list):
        pairs = [scrub_json(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            k2, c1 = scrub_json(k)
            v2, c2 = scrub_json(v)
            out[k2] = v2
            changed = changed or c1 or c2
        return out, changed
    return value, False


def iter_json_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def read_jsonl(path: Path, rel: str) -> FileResult:
    """Records of a JSON-lines file (arXiv snapshot, BEIR corpus, or title/abstract objects).

    Bad lines (broken JSON, not an object, no title) become Problems; the rest are read.
    """
    result = FileResult()
    text, problem = read_text(path, rel, strict=True)
    if text is None:
        result.problems.append(problem or Problem(rel, None, "cannot read file"))
        return result
    loads = json.loads
    default_source = rel.rsplit("/", 1)[-1]
    for number, line in iter_json_lines(text):
        try:
            obj = loads(line)
        except (ValueError, RecursionError) as e:
            msg = getattr(e, "msg", None) or type(e).__name__
            result.problems.append(Problem(rel, number, f"not valid JSON ({msg})"))
            continue
        # Only a \uD8xx-\uDFxx escape can put a lone surrogate in decoded text.
        obj, scrubbed = scrub_json_line(line, obj)
        if scrubbed:
            result.problems.append(Problem(rel, number, SURROGATE_MESSAGE))
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            result.problems.append(Problem(rel, number, f"expected a JSON object, got {kind}"))
            continue
        try:
            record = record_from_object(obj, rel, number, default_source)
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            result.problems.append(Problem(rel, number, f"cannot read record: {e}"))
            continue
        if record is None:
            continue
        if not record.title:
            result.problems.append(Problem(rel, number, "record has no title"))
            continue
        result.records.append(record)
    return result
