"""Read BibTeX and JSON-lines paper lists, and import them into notes/imported/ as files."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import ImportFailed

# bibtexparser (~70 ms) and pylatexenc are imported inside the BibTeX reader, for start-up
# time: most commands, and most notes folders, read no BibTeX.
from search.readers.records import (
    SURROGATE_MESSAGE,
    FileResult,
    Problem,
    Record,
    clean_text,
    link_of,
    normalise_doi,
    normalise_title,
    parse_arxiv_id,
    scrub_surrogates,
    summarise_problems,
)

IMPORTED_DIR = "imported"
# A paper list holds many papers (100k arXiv abstracts are 83 MB), so its cap is above a
# Markdown note's 20 MB; past it, reading would cost minutes and gigabytes. An import whose
# output would pass it is refused. The binary check is the notes' own.
MAX_DATA_BYTES = 256 * 1024 * 1024
BINARY_SNIFF = 8192
# Which imported file came from which input file, so a re-import rewrites its own file and a
# different file with the same stem gets another name instead of overwriting it.
ORIGINS_FILE = ".origins.json"
# Held while an import picks names and writes (hidden, so rebuild never reads it).
LOCK_FILE = ".import.lock"
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


# --- small text helpers ---------------------------------------------------------------------

_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d|21\d\d)")


def _one_line(text: str) -> str:
    return " ".join(clean_text(text).split())


# A paragraph ends at a blank line, or where the next line is indented (arXiv's convention).
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*(?:\n\s*|(?=[ \t]))")


def unwrap(text: str) -> str:
    """Undo hard line wraps: lines of one paragraph joined with spaces; a blank line or an
    indented line (arXiv's convention) starts a new paragraph, kept as a blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text))
    return "\n\n".join(p for p in paragraphs if p)


_ACCENTS = {
    "'": "\u0301",
    '"': "\u0308",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_SYMBOL_ACCENT = re.compile(
    r"\{?\\(['\"`^~=.])\s*(?:\{\s*(\\[ij]|[A-Za-z])\s*\}|(\\[ij]|[A-Za-z]))\}?"
)
_LETTER_ACCENT = re.compile(r"\{?\\([uvHckr])(?:\s*\{\s*(\\[ij]|[A-Za-z])\s*\}|\s+([A-Za-z])\b)\}?")
_ANY_ACCENT = re.compile(r"\\(?:['\"`^~=.uvHckr]|ss|o|O|aa|AA|ae|l)")
_SPECIAL = {r"\ss": "ß", r"\o": "ø", r"\O": "Ø", r"\aa": "å", r"\AA": "Å", r"\ae": "æ", r"\l": "ł"}
_SPECIAL_RE = re.compile(r"\{?(\\(?:ss|o|O|aa|AA|ae|l))(?![A-Za-z])\s*(?:\{\})?\}?")


def decode_accents(text: str) -> str:
    """Turn LaTeX accent macros (\\'e, \\"{u}, {\\v c}) into letters; leave math alone.

    Used for arXiv metadata, whose abstracts hold math that a full LaTeX decoder would mangle.
    """
    if "\\" not in text or not _ANY_ACCENT.search(text):
        return text

    def repl(m: re.Match[str]) -> str:
        base = m.group(2) or m.group(3)
        base = {"\\i": "i", "\\j": "j"}.get(base, base)
        return unicodedata.normalize("NFC", base + _ACCENTS[m.group(1)])

    text = _SYMBOL_ACCENT.sub(repl, text)
    text = _LETTER_ACCENT.sub(repl, text)
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(1)], text)


def _year(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1500 <= value <= 2199 else None
    if isinstance(value, str):
        m = _YEAR.search(value)
        return int(m.group(1)) if m else None
    return None


def _str_list(value: Any, split: str = r"[,;]") -> list[str]:
    if isinstance(value, str):
        items: list[Any] = re.split(split, value)
    elif isinstance(value, list):
        items = value
    else:
        return []
    out = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append(_one_line(item))
    return out


def _opt_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _decode(data: bytes, rel: str, strict: bool) -> tuple[str | None, Problem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        if not strict:
            # Old BibTeX exports are often Windows-1252; better a readable guess than nothing.
            return data.decode("cp1252", errors="replace"), None
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        offset = exc.start + bom
        line = data[:offset].count(b"\n") + 1
        return None, Problem(rel, line, f"not valid UTF-8 (byte offset {offset}, line {line})")


def _read_text(path: Path, rel: str, strict: bool) -> tuple[str | None, Problem | None]:
    """The text of a paper-list file, or the one Problem that keeps it from being read: the
    checks Markdown notes get (a regular file, at most MAX_DATA_BYTES, no NUL byte near the
    start; UTF-8 unless `strict` is False, as BibTeX may be Windows-1252)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None, Problem(rel, None, "not a regular file")
        if st.st_size > MAX_DATA_BYTES:
            return None, _too_big(rel, st.st_size)
        with open(path, "rb") as f:
            data = f.read(MAX_DATA_BYTES + 1)  # it may have grown since stat()
    except OSError as e:
        return None, Problem(rel, None, f"cannot read file: {e.strerror or e}")
    if len(data) > MAX_DATA_BYTES:
        return None, _too_big(rel, len(data))
    if b"\x00" in data[:BINARY_SNIFF]:
        return None, Problem(rel, None, "binary file (NUL byte), not a text note")
    return _decode(data, rel, strict)


def _too_big(rel: str, size: int) -> Problem:
    mb = MAX_DATA_BYTES / (1024 * 1024)
    return Problem(
        rel, None, f"{size} bytes is over the {mb:g} MB limit for a paper list; split it"
    )


# --- JSON lines -----------------------------------------------------------------------------

_ARXIV_SNAPSHOT_KEYS = ("versions", "update_date", "authors_parsed", "submitter")
# Keys of the generic format that map to Record fields (the rest go to Record.extra).
_GENERIC_KEYS = frozenset(CANONICAL_KEYS) | {"pdf", "status"}


def _arxiv_snapshot_record(obj: dict[str, Any], rel: str, line: int) -> Record:
    title = _one_line(decode_accents(str(obj.get("title") or "")))
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
        authors = _str_list(decode_accents(str(obj.get("authors") or "")), r",|\band\b")
    year = None
    versions = obj.get("versions")
    # The first version's date is when the paper appeared; update_date is only a fallback.
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        year = _year(versions[0].get("created"))
    if year is None:
        year = _year(obj.get("update_date"))
    raw_id = str(obj.get("id") or "")
    arxiv = parse_arxiv_id(raw_id)
    extra = {"id": raw_id, "source": "arxiv"} if raw_id else {"source": "arxiv"}
    journal = _opt_str(obj.get("journal-ref"))
    if journal:
        extra["journal_ref"] = _one_line(journal)
    return Record(
        title=title,
        file=rel,
        line=line,
        abstract=abstract,
        arxiv=arxiv,
        doi=normalise_doi(_opt_str(obj.get("doi"))),
        url=f"https://arxiv.org/abs/{raw_id}" if raw_id else None,
        authors=authors,
        year=year,
        tags=_str_list(obj.get("categories"), r"\s+"),
        extra=extra,
    )


def _beir_record(obj: dict[str, Any], rel: str, line: int) -> Record:
    extra = {"id": str(obj["_id"]), "source": "beir"}
    return Record(
        title=_one_line(str(obj.get("title") or "")),
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
        text = _opt_str(value)
        if text is not None:
            extra[key] = text
    ext_id = _opt_str(obj.get("id"))
    if ext_id:
        extra["id"] = ext_id
    extra["source"] = _opt_str(obj.get("source")) or default_source
    arxiv_raw = _opt_str(obj.get("arxiv"))
    url = link_of(obj) or _opt_str(obj.get("url")) or _opt_str(obj.get("pdf"))
    arxiv = parse_arxiv_id(arxiv_raw) if arxiv_raw else None
    if arxiv is None and url and "arxiv.org/" in url:
        arxiv = parse_arxiv_id(url)
    authors = obj.get("authors")
    note = obj.get("note")
    abstract = obj.get("abstract")
    venue = _opt_str(obj.get("venue"))
    return Record(
        title=_one_line(str(obj.get("title") or "")),
        file=rel,
        line=line,
        note=clean_text(note) if isinstance(note, str) else "",
        abstract=clean_text(abstract) if isinstance(abstract, str) else "",
        arxiv=arxiv,
        doi=normalise_doi(_opt_str(obj.get("doi"))),
        url=url,
        authors=_str_list(authors, r",|\band\b")
        if isinstance(authors, str)
        else _str_list(authors),
        year=_year(obj.get("year")),
        venue=_one_line(venue) if venue else None,
        tags=_str_list(obj.get("tags")),
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


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def scrub_json_line(line: str | bytes, obj: Any) -> tuple[Any, bool]:
    """`obj` decoded from `line`, with lone surrogates (`\\ud800`, which no UTF-8 text can
    hold: SQLite and every writer refuse them) replaced by U+FFFD; and whether any was."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    if not _SURROGATE_ESCAPE.search(text):
        return obj, False
    return _scrub_json(obj)


def _scrub_json(value: Any) -> tuple[Any, bool]:
    """A decoded JSON value with lone surrogates replaced by U+FFFD, and whether any was."""
    if isinstance(value, str):
        fixed = scrub_surrogates(value)
        return fixed, fixed is not value
    if isinstance(value, list):
        pairs = [_scrub_json(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            k2, c1 = _scrub_json(k)
            v2, c2 = _scrub_json(v)
            out[k2] = v2
            changed = changed or c1 or c2
        return out, changed
    return value, False


def _iter_json_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def read_jsonl(path: Path, rel: str) -> FileResult:
    """Records of a JSON-lines file (arXiv snapshot, BEIR corpus, or title/abstract objects).

    Bad lines (broken JSON, not an object, no title) become Problems; the rest are read.
    """
    result = FileResult()
    text, problem = _read_text(path, rel, strict=True)
    if text is None:
        result.problems.append(problem or Problem(rel, None, "cannot read file"))
        return result
    loads = json.loads
    default_source = rel.rsplit("/", 1)[-1]
    for number, line in _iter_json_lines(text):
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


# --- BibTeX ---------------------------------------------------------------------------------


# TeX logos pylatexenc drops (it knows no text for them): "On {\LaTeX} typesetting" must keep
# its word.
_LOGOS = {
    "TeX": "TeX",
    "LaTeX": "LaTeX",
    "LaTeXe": "LaTeX2e",
    "BibTeX": "BibTeX",
    "XeTeX": "XeTeX",
    "XeLaTeX": "XeLaTeX",
    "LuaTeX": "LuaTeX",
    "LuaLaTeX": "LuaLaTeX",
    "ConTeXt": "ConTeXt",
    "AmS": "AMS",
    "AmSTeX": "AMS-TeX",
}


@functools.lru_cache(maxsize=1)
def _latex_converter() -> Any:
    from pylatexenc.latex2text import (
        LatexNodes2Text,
        MacroTextSpec,
        get_default_latex_context_db,
    )

    db = get_default_latex_context_db()
    db.add_context_category(
        "papers-logos",
        prepend=True,
        macros=[MacroTextSpec(name, text) for name, text in _LOGOS.items()],
    )
    # math_mode="verbatim": $x^2$ stays as written rather than becoming lossy Unicode.
    return LatexNodes2Text(latex_context=db, math_mode="verbatim", strict_latex_spaces=False)


# pylatexenc's cost grows faster than its input (a plain 1 MB abstract took 18 s), so long
# values are converted in pieces of about this many characters, cut where no markup spans
# the cut: the cost is then linear in the input.
LATEX_PIECE_CHARS = 2_000


def _latex_to_text(value: str) -> str:
    if len(value) <= LATEX_PIECE_CHARS:
        return _latex_piece_to_text(value)
    return "".join(_latex_piece_to_text(p) for p in latex_pieces(value, LATEX_PIECE_CHARS))


def _latex_piece_to_text(value: str) -> str:
    try:
        text = _latex_converter().latex_to_text(value)
    except Exception:  # pylatexenc raises many types on malformed input; keep the raw text
        text = value.replace("{", "").replace("}", "")
    return str(text)


def latex_pieces(value: str, size: int) -> list[str]:
    """`value` cut into pieces of at least `size` characters, each cut just after a space
    that is outside braces, math, comments and environments, not after a macro (whose
    argument may follow the space) and not before `{` or `[`: markup never spans a cut, so
    converting the pieces one by one gives what converting the whole gives. One pass."""
    pieces, start, depth, env, i, n = [], 0, 0, 0, 0, len(value)
    math = comment = False
    word_start = 0  # where the word before the current position began
    while i < n:
        c = value[i]
        if comment:
            comment = c != "\n"
        elif c == "\\":
            if value.startswith("begin", i + 1):
                env += 1
            elif value.startswith("end", i + 1):
                env = max(0, env - 1)
            i += 2
            continue
        elif c == "%":
            comment = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "$":
            math = not math
        elif c.isspace():
            if (
                i + 1 - start >= size
                and depth == 0
                and env == 0
                and not math
                and "\\" not in value[word_start:i]
                and value[i + 1 : i + 2] not in ("{", "[", " ", "\n", "\t")
            ):
                pieces.append(value[start : i + 1])
                start = i + 1
            word_start = i + 1
        i += 1
    pieces.append(value[start:])
    return pieces


# BibTeX's predefined month macros.
_MONTHS = {
    m[:3].lower(): m
    for m in (
        "January February March April May June July August September October November December"
    ).split()
}


def _split_concatenation(value: str) -> list[str] | None:
    """The parts of `a # "b" # {c}` split at '#' outside braces and quotes; None if none."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(value):
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == '"' and depth == 0:
            quoted = not quoted
        elif c == "#" and depth == 0 and not quoted:
            parts.append(value[start:i])
            start = i + 1
    if not parts:
        return None
    parts.append(value[start:])
    return [p.strip() for p in parts]


# The longest BibTeX field read (characters): more is cut and reported before any conversion.
# Text past chunking.MAX_EMBED_CHARS is not embedded anyway; the cap is what keeps a 1 KB file
# of doubling @string macros (2^39 characters) from costing without bound.
MAX_BIB_FIELD_CHARS = 100_000


def _expand_macros(value: str, strings: dict[str, str]) -> str | None:
    """A concatenation (`cvpr # " 2020"`) with @string macros and months expanded, enclosed
    in braces; None when `value` is no concatenation. Expansion stops past
    MAX_BIB_FIELD_CHARS (the value is then one character over, to be reported)."""
    parts = _split_concatenation(value)
    if parts is None:
        return None
    out, total = [], 0
    for part in parts:
        if len(part) >= 2 and (part[0], part[-1]) in (("{", "}"), ('"', '"')):
            piece = part[1:-1]
        elif part.isdigit():
            piece = part
        else:
            key = part.lower()
            piece = strings.get(key, _MONTHS.get(key, part))
        out.append(piece)
        total += len(piece)
        if total > MAX_BIB_FIELD_CHARS:
            return "{" + "".join(out)[: MAX_BIB_FIELD_CHARS + 1] + "}"
    return "{" + "".join(out) + "}"


def _unenclosed(value: str) -> str:
    if len(value) >= 2 and (value[0], value[-1]) in (("{", "}"), ('"', '"')):
        return value[1:-1]
    return value


def _bib_parse_stack() -> list[Any]:
    """bibtexparser's default stack with concatenations (`#`) expanded between its string
    resolution (whole-value references only) and its removal of enclosing braces."""
    from bibtexparser.library import Library
    from bibtexparser.middlewares import (
        RemoveEnclosingMiddleware,
        ResolveStringReferencesMiddleware,
    )
    from bibtexparser.middlewares.middleware import LibraryMiddleware

    class ExpandConcatenationsMiddleware(LibraryMiddleware):
        @classmethod
        def metadata_key(cls) -> str:
            return "papers-expand-concatenations"

        def transform(self, library: Library) -> Library:
            strings: dict[str, str] = {}
            for block in library.strings:
                raw = str(block.value)
                expanded = _expand_macros(raw, strings)
                strings[block.key.lower()] = _unenclosed(expanded or raw)
            for entry in library.entries:
                for f in entry.fields:
                    if isinstance(f.value, str):
                        expanded = _expand_macros(f.value, strings)
                        if expanded is not None:
                            f.value = expanded
            return library

    return [
        ResolveStringReferencesMiddleware(True),
        ExpandConcatenationsMiddleware(True),
        RemoveEnclosingMiddleware(True),
    ]


def _split_top_level_and(value: str) -> list[str]:
    """Split a BibTeX name list on ' and ' outside braces ({Google and Friends} stays whole)."""
    parts, depth, start, i = [], 0, 0, 0
    lower = value.lower()
    while i < len(value):
        c = value[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and c.isspace():
            m = re.match(r"\s+and\s+", lower[i:])
            if m:
                parts.append(value[start:i])
                i += m.end()
                start = i
                continue
        i += 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


def _bib_name(raw: str) -> str:
    name = _one_line(_latex_to_text(raw))
    if "," in name:
        # "von Last, Jr, First" or "Last, First" → "First von Last Jr".
        pieces = [p.strip() for p in name.split(",")]
        if len(pieces) >= 3:
            last, jr, first = pieces[0], pieces[1], ", ".join(pieces[2:])
            return " ".join(p for p in (first, last, jr) if p)
        last, first = pieces[0], pieces[1]
        return " ".join(p for p in (first, last) if p)
    return name


def _bib_record(entry: Any, rel: str, problems: list[Problem]) -> Record:
    fields = {k.lower(): str(f.value) for k, f in entry.fields_dict.items()}
    line = int(entry.start_line) + 1
    for key, value in fields.items():
        if len(value) > MAX_BIB_FIELD_CHARS:
            fields[key] = value[:MAX_BIB_FIELD_CHARS]
            problems.append(
                Problem(
                    rel,
                    line,
                    f"entry '{entry.key}': field '{key}' too long (over "
                    f"{MAX_BIB_FIELD_CHARS:,} characters); cut there",
                )
            )

    def text(key: str) -> str:
        return clean_text(_latex_to_text(fields[key])) if fields.get(key, "").strip() else ""

    title = _one_line(text("title"))
    abstract = unwrap(text("abstract"))
    note = "\n\n".join(unwrap(t) for t in (text("note"), text("annote")) if t)
    authors = [
        n
        for n in (_bib_name(a) for a in _split_top_level_and(fields.get("author", "")))
        if n and n.lower() != "others"
    ]
    venue = _one_line(text("journal") or text("booktitle")) or None
    url = fields.get("url", "").strip() or None
    arxiv = None
    eprint = fields.get("eprint", "").strip()
    prefix = fields.get("archiveprefix", "").strip().lower()
    if eprint and (prefix == "arxiv" or not prefix):
        arxiv = parse_arxiv_id(eprint)
    if arxiv is None:
        # Google Scholar writes journal={arXiv preprint arXiv:1707.01495}; Zotero the abs URL.
        for candidate in (venue or "", url or ""):
            if "arxiv" in candidate.lower():
                arxiv = parse_arxiv_id(candidate)
                if arxiv:
                    break
    return Record(
        title=title,
        file=rel,
        line=line,
        note=note,
        abstract=abstract,
        arxiv=arxiv,
        doi=normalise_doi(fields.get("doi")),
        url=url,
        authors=authors,
        year=_year(fields.get("year", "")) or _year(fields.get("date", "")),
        venue=venue,
        tags=_str_list(_latex_to_text(fields.get("keywords", ""))),
        extra={"id": entry.key, "source": Path(rel).name},
    )


def _bib_problem(block: Any, rel: str) -> Problem:
    line = int(block.start_line) + 1 if getattr(block, "start_line", None) is not None else None
    kind = type(block).__name__
    raw = str(getattr(block, "raw", "") or "")
    head = raw.strip().split("\n", 1)[0][:60]
    if kind == "DuplicateBlockKeyBlock":
        message = f"duplicate entry key '{getattr(block, 'key', '?')}' (this copy ignored)"
    elif kind == "DuplicateFieldKeyBlock":
        entry = getattr(block, "ignore_error_block", None)
        key = getattr(entry, "key", None) or getattr(block, "key", None) or "?"
        fields = ", ".join(sorted(getattr(block, "duplicate_keys", None) or ()))
        what = f"the field {fields}" if fields else "a field"
        message = f"entry '{key}' repeats {what} (entry ignored)"
    else:
        message = f"cannot parse BibTeX entry starting '{head}' (entry ignored)"
    return Problem(rel, line, message)


def read_bibtex(path: Path, rel: str) -> FileResult:
    """Records of a BibTeX file; entries that cannot be parsed become Problems with their line."""
    import logging

    import bibtexparser

    result = FileResult()
    text, problem = _read_text(path, rel, strict=False)
    if text is None:
        result.problems.append(problem or Problem(rel, None, "cannot read file"))
        return result
    # bibtexparser logs each failed block itself; they are reported as Problems instead.
    logger = logging.getLogger("bibtexparser")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        library = bibtexparser.parse_string(text, parse_stack=_bib_parse_stack())
    except Exception as e:  # the parser has no documented exception type for hopeless input
        result.problems.append(Problem(rel, None, f"cannot parse BibTeX: {e}"))
        return result
    finally:
        logger.setLevel(previous)
    for block in library.failed_blocks:
        result.problems.append(_bib_problem(block, rel))
    for entry in library.entries:
        try:
            record = _bib_record(entry, rel, result.problems)
        except Exception as e:  # one odd entry must not lose the rest of the file
            start = entry.start_line
            line = start + 1 if isinstance(start, int) else None
            result.problems.append(Problem(rel, line, f"cannot read entry '{entry.key}': {e}"))
            continue
        if not record.title:
            result.problems.append(Problem(rel, record.line, f"entry '{entry.key}' has no title"))
            continue
        result.records.append(record)
    result.problems.sort(key=lambda p: p.line or 0)
    return result


def read_note_data(path: Path, rel: str) -> FileResult:
    """Records of a .bib or .jsonl file under notes/ (what rebuild calls for those files)."""
    suffix = path.suffix.lower()
    if suffix == ".bib":
        return read_bibtex(path, rel)
    if suffix == ".jsonl":
        return read_jsonl(path, rel)
    return FileResult(problems=[Problem(rel, None, f"not a paper-list file ({suffix or 'none'})")])


# --- import ---------------------------------------------------------------------------------


@dataclass
class ImportedFile:
    """What importing one input file did."""

    name: str
    written: Path | None
    read: int
    written_records: int
    problems: list[Problem] = field(default_factory=list)
    message: str = ""
    # A re-import merges into the file already there (see _merge_into):
    edits_kept: int = 0  # papers where something written by hand was kept over the source
    added: int = 0  # papers new in the source
    removed: int = 0  # papers gone from the source, untouched by hand, so dropped


@dataclass
class ImportReport:
    """What `import_files` did, one entry per input file."""

    files: list[ImportedFile] = field(default_factory=list)


def _sniff_format(path: Path, text: str) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".bib":
        return "bib"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    head = text.lstrip()[:1]
    if head in ("@", "%"):
        return "bib"
    if head == "[":
        return "json-array"
    if head == "{":
        return "jsonl"
    return None


def _read_json_array(path: Path, text: str, rel: str) -> FileResult:
    try:
        items = json.loads(text)
    except ValueError as e:
        raise ImportFailed(f"{path}: not valid JSON ({e})") from None
    if not isinstance(items, list):
        raise ImportFailed(f"{path}: expected a JSON list of objects")
    # ensure_ascii keeps escapes such as \ud800 as they were, for read_jsonl's checks.
    lines = "\n".join(json.dumps(i) for i in items)
    result = FileResult()
    for number, line in _iter_json_lines(lines):
        obj = json.loads(line)
        if _SURROGATE_ESCAPE.search(line):
            obj, scrubbed = _scrub_json(obj)
            if scrubbed:
                result.problems.append(Problem(rel, None, f"item {number}: {SURROGATE_MESSAGE}"))
        record = record_from_object(obj, rel, number) if isinstance(obj, dict) else None
        if record is None or not record.title:
            result.problems.append(Problem(rel, None, f"item {number}: no paper title"))
        else:
            result.records.append(record)
    return result


def canonical(record: Record) -> dict[str, Any]:
    """A record as one object of the canonical format (empty values left out)."""
    values: dict[str, Any] = {
        "title": record.title,
        "abstract": record.abstract,
        "authors": record.authors,
        "year": record.year,
        "venue": record.venue,
        "arxiv": record.arxiv,
        "doi": record.doi,
        "url": record.url,
        "id": record.extra.get("id"),
        "note": record.note,
        "tags": record.tags,
        "source": record.extra.get("source"),
    }
    return {k: values[k] for k in CANONICAL_KEYS if values[k] not in (None, "", [])}


def _dedupe(records: Iterable[Record]) -> list[Record]:
    """One record per paper: later duplicates (same title, id, arXiv id or DOI) only fill gaps."""
    kept: list[Record] = []
    index: dict[str, int] = {}
    for r in records:
        keys = ["t:" + normalise_title(r.title)]
        if r.extra.get("id"):
            keys.append("i:" + r.extra["id"])
        if r.arxiv:
            keys.append("a:" + r.arxiv)
        if r.doi:
            keys.append("d:" + r.doi)
        hit = next((index[k] for k in keys if k in index), None)
        if hit is None:
            hit = len(kept)
            kept.append(r)
        else:
            first = kept[hit]
            for name in ("abstract", "note", "arxiv", "doi", "url", "year", "venue"):
                if not getattr(first, name) and getattr(r, name):
                    setattr(first, name, getattr(r, name))
            if not first.authors:
                first.authors = r.authors
        for k in keys:
            index.setdefault(k, hit)
    return kept


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_origins(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / ORIGINS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _output_name(stem: str, origin: str, origins: dict[str, str], folder: Path) -> str:
    """`<stem>.jsonl`, or `<stem>-2.jsonl`, ... when that name holds another input's records.

    A name is ours if the origins list says it came from this input; a free name is one that
    neither exists nor is listed. Files nobody listed (placed by hand) are never overwritten.
    """
    safe = re.sub(r"[^\w.\-]+", "-", stem).strip("-.") or "import"
    n = 1
    while True:
        name = f"{safe}.jsonl" if n == 1 else f"{safe}-{n}.jsonl"
        if origins.get(name) == origin:
            return name
        if name not in origins and not (folder / name).exists():
            return name
        n += 1


# --- re-import: merging into a file the user may have edited ---------------------------------
#
# notes/imported/<name>.jsonl is the user's to edit. Beside it, the hidden `.<name>.base`
# records what the last import wrote (per paper: its keys and a hash of each field), so a
# re-import can tell a field the user changed from one the source changed: per paper and field,
# an untouched field takes the source's new value; a field added, changed or deleted by hand
# stays as the user left it. Papers new in the source are added at the end; a paper gone from
# the source is dropped only if the user never touched it. Lines that are not JSON objects
# (a half-typed edit) are kept verbatim. Without a base (a file imported by an older version)
# every existing field counts as the user's.


def _base_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.base")


def _staged_base_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.base.next")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settle_base(target: Path) -> None:
    """Finish or undo what a killed import left: a staged base describes the data written
    with it, so it is the base when the file holds exactly that data, and is dropped when
    the file is still the one before (the previous base stays right for it)."""
    staged = _staged_base_path(target)
    try:
        first = staged.read_text(encoding="utf-8").split("\n", 1)[0]
        written = json.loads(first).get("written")
    except (OSError, ValueError, AttributeError):
        staged.unlink(missing_ok=True)
        return
    try:
        current = _sha256(target.read_bytes())
    except OSError:
        current = None
    if current == written:
        os.replace(staged, _base_path(target))
    else:
        staged.unlink(missing_ok=True)


def _obj_keys(obj: dict[str, Any]) -> list[str]:
    """The keys a paper is matched by across imports: id, arXiv id, DOI, normalised title."""
    keys = []
    ext_id = _opt_str(obj.get("id"))
    if ext_id:
        keys.append("i:" + ext_id)
    arxiv_raw = _opt_str(obj.get("arxiv"))
    arxiv = parse_arxiv_id(arxiv_raw) if arxiv_raw else None
    if arxiv:
        keys.append("a:" + arxiv)
    doi = normalise_doi(_opt_str(obj.get("doi")))
    if doi:
        keys.append("d:" + doi)
    title = obj.get("title")
    if isinstance(title, str) and title.strip():
        keys.append("t:" + normalise_title(_one_line(title)))
    return keys


def _hash(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _field_hashes(obj: dict[str, Any]) -> dict[str, str]:
    return {k: _hash(v) for k, v in obj.items()}


def _load_base(target: Path) -> list[tuple[list[str], dict[str, str]]]:
    try:
        text = _base_path(target).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            keys = [str(k) for k in entry["keys"]]
            fields = {str(k): str(v) for k, v in entry["fields"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        out.append((keys, fields))
    return out


class _KeyIndex:
    """First unused item matching any of a paper's keys."""

    def __init__(self, keyed: list[list[str]]) -> None:
        self.by_key: dict[str, list[int]] = {}
        for i, keys in enumerate(keyed):
            for k in keys:
                self.by_key.setdefault(k, []).append(i)
        self.used: set[int] = set()

    def take(self, keys: list[str]) -> int | None:
        for k in keys:
            for i in self.by_key.get(k, ()):
                if i not in self.used:
                    self.used.add(i)
                    return i
        return None


def _merge_into(target: Path, new_objs: list[dict[str, Any]], item: ImportedFile) -> list[str]:
    """The lines to write to `target`: `new_objs` merged with what is there (see above)."""
    fresh = [json.dumps(o, ensure_ascii=False) for o in new_objs]
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        item.added = len(new_objs)
        return fresh
    except (OSError, ValueError) as e:
        raise ImportFailed(
            f"{target}: cannot read the file to merge into ({e}); move it away to import anew"
        ) from None
    base = _load_base(target)
    base_index = _KeyIndex([keys for keys, _ in base])
    new_index = _KeyIndex([_obj_keys(o) for o in new_objs])
    rel = f"{IMPORTED_DIR}/{target.name}"
    out: list[str] = []
    for number, line in enumerate(existing.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            item.problems.append(
                Problem(rel, number, "not valid JSON or not an object; kept as written")
            )
            out.append(line)
            continue
        keys = _obj_keys(obj)
        b = base_index.take(keys)
        hashes = base[b][1] if b is not None else None
        n = new_index.take(keys)
        if n is None:
            untouched = hashes is not None and _field_hashes(obj) == hashes
            if untouched:
                item.removed += 1  # gone from the source and never edited
            else:
                out.append(line)  # added or edited by hand: the user's
            continue
        merged, edited = _merge_fields(obj, new_objs[n], hashes)
        item.edits_kept += edited
        out.append(line if merged == obj else json.dumps(merged, ensure_ascii=False))
    for n, line in enumerate(fresh):
        if n not in new_index.used:
            out.append(line)
            item.added += 1
    return out


def _merge_fields(
    mine: dict[str, Any], source: dict[str, Any], base: dict[str, str] | None
) -> tuple[dict[str, Any], bool]:
    """One paper: fields the user never touched follow the source; the user's edits win.
    Returns (merged object, whether any edit of the user's was kept)."""
    merged: dict[str, Any] = {}
    edited = False
    for k, v in mine.items():
        if base is not None and base.get(k) == _hash(v):
            if k in source:
                merged[k] = source[k]
        else:
            merged[k] = v
            edited = edited or source.get(k) != v
    for k, v in source.items():
        if k in mine:
            continue
        if base is not None and k in base:
            edited = True  # deleted by hand: stays deleted
            continue
        merged[k] = v
    return merged, edited


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def import_files(
    paths: list[Path], notes_dir: Path, log: Callable[[str], None] = lambda s: None
) -> ImportReport:
    """Import paper lists (.bib, JSON lines) into `notes_dir/imported/<stem>.jsonl`.

    Every input is read before anything is written, so an unreadable or unknown file
    (ImportFailed) leaves notes/ unchanged. Re-importing a file rewrites the same output with
    the same bytes; another input with the same stem gets `<stem>-2.jsonl` (see _output_name).
    """
    notes_dir = notes_dir.resolve()
    folder = notes_dir / IMPORTED_DIR
    report = ImportReport()
    planned: list[tuple[ImportedFile, str, list[Record]]] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if _is_inside(path, notes_dir):
            report.files.append(
                ImportedFile(
                    name=str(given),
                    written=None,
                    read=0,
                    written_records=0,
                    message="already in the notes folder; rebuild reads it as it is",
                )
            )
            continue
        if not path.exists():
            raise ImportFailed(f"{given}: no such file")
        if not path.is_file():
            raise ImportFailed(f"{given}: not a file")
        text, problem = _read_text(path, path.name, strict=False)
        if text is None:
            why = problem.message if problem else "cannot read"
            raise ImportFailed(f"{given}: {why}; nothing was written")
        kind = _sniff_format(path, text)
        if kind is None:
            raise ImportFailed(
                f"{given}: unknown format (expected BibTeX .bib or JSON lines .jsonl)"
            )
        if kind == "bib":
            result = read_bibtex(path, path.name)
        elif kind == "json-array":
            result = _read_json_array(path, text, path.name)
        else:
            result = read_jsonl(path, path.name)
        if not result.records:
            why = f" ({result.problems[0]})" if result.problems else ""
            raise ImportFailed(f"{given}: no paper could be read{why}; nothing was written")
        records = _dedupe(result.records)
        item = ImportedFile(
            name=str(given),
            written=None,
            read=len(result.records),
            written_records=len(records),
            problems=summarise_problems(result.problems),
        )
        planned.append((item, str(path), records))
        report.files.append(item)

    if not planned:
        return report
    # Choosing the output name, merging and writing happen under one lock: two imports at
    # once would otherwise both pick the same free name and one's papers would be lost.
    folder.mkdir(parents=True, exist_ok=True)
    with _import_lock(folder, log):
        _write_planned(folder, planned)
    return report


@contextmanager
def _import_lock(folder: Path, log: Callable[[str], None]) -> Iterator[None]:
    """One import at a time writes into `folder`; others wait (imports are short). The lock
    dies with its process, even on SIGKILL."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another import into {folder} to finish…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _pause(stage: str) -> None:
    # Test hook (as in build.py): PAPERS_TEST_PAUSE_AT=<stage> prints "PAUSED AT <stage>" on
    # stderr and sleeps PAPERS_TEST_PAUSE_SECONDS there, so tests can start a rival process.
    if os.environ.get("PAPERS_TEST_PAUSE_AT") == stage:
        sys.stderr.write(f"PAUSED AT {stage}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("PAPERS_TEST_PAUSE_SECONDS", "3600")))


def _write_planned(folder: Path, planned: list[tuple[ImportedFile, str, list[Record]]]) -> None:
    origins = _load_origins(folder)
    for item, origin, records in planned:
        name = _output_name(Path(origin).stem, origin, origins, folder)
        _pause("import-named")  # where a rival import could take the same name
        origins[name] = origin
        target = folder / name
        objs = [canonical(r) for r in records]
        _settle_base(target)
        lines = _merge_into(target, objs, item)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        base = (
            json.dumps({"written": _sha256(data)})
            + "\n"
            + "".join(
                json.dumps({"keys": _obj_keys(o), "fields": _field_hashes(o)}, ensure_ascii=False)
                + "\n"
                for o in objs
            )
        ).encode("utf-8")
        base_path = _base_path(target)
        # Skipping an identical rewrite keeps the file's mtime, so rebuilds see nothing new.
        if not (target.is_file() and target.read_bytes() == data):
            # The base is staged first and put in place after the data: a kill at any moment
            # leaves a staged base that _settle_base adopts (the data was written) or drops.
            write_atomic(_staged_base_path(target), base)
            write_atomic(target, data)
            os.replace(_staged_base_path(target), base_path)
        elif not (base_path.is_file() and base_path.read_bytes() == base):
            write_atomic(base_path, base)
        item.written = target
    origins_data = (
        json.dumps(origins, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    ).encode()
    origins_path = folder / ORIGINS_FILE
    if not (origins_path.is_file() and origins_path.read_bytes() == origins_data):
        write_atomic(origins_path, origins_data)
