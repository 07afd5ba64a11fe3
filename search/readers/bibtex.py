"""Read BibTeX paper lists: entries to Records, `@string` macros expanded within bounds, LaTeX
turned into text piece by piece (so a long field costs time in proportion to its length)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from search.readers.fields import one_line, read_text, str_list, unwrap, year_of
from search.readers.records import (
    FileResult,
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

# bibtexparser (~70 ms) and pylatexenc are imported inside the BibTeX reader, for start-up
# time: most commands, and most notes folders, read no BibTeX.


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
    name = one_line(_latex_to_text(raw))
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

    title = one_line(text("title"))
    abstract = unwrap(text("abstract"))
    note = "\n\n".join(unwrap(t) for t in (text("note"), text("annote")) if t)
    authors = [
        n
        for n in (_bib_name(a) for a in _split_top_level_and(fields.get("author", "")))
        if n and n.lower() != "others"
    ]
    venue = one_line(text("journal") or text("booktitle")) or None
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
        year=year_of(fields.get("year", "")) or year_of(fields.get("date", "")),
        venue=venue,
        tags=str_list(_latex_to_text(fields.get("keywords", ""))),
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
    text, problem = read_text(path, rel, strict=False)
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
