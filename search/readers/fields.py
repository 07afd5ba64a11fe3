"""Fields of paper-list files (BibTeX, JSON lines) turned into Record fields: text decoded and
checked, one-line titles, unwrapped abstracts, LaTeX accents, years, author lists; and the
size cap every paper-list file is read under."""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import Any

from search.readers.records import (
    Problem,
    clean_text,
)

# A paper list holds many papers (100k arXiv abstracts are 83 MB), so its cap is above a
# Markdown note's 20 MB; past it, reading would cost minutes and gigabytes. An import whose
# output would pass it is refused. The binary check is the notes' own.
MAX_DATA_BYTES = 256 * 1024 * 1024
BINARY_SNIFF = 8192

_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d|21\d\d)")


def one_line(text: str) -> str:
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


def year_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1500 <= value <= 2199 else None
    if isinstance(value, str):
        m = _YEAR.search(value)
        return int(m.group(1)) if m else None
    return None


def str_list(value: Any, split: str = r"[,;]") -> list[str]:
    if isinstance(value, str):
        items: list[Any] = re.split(split, value)
    elif isinstance(value, list):
        items = value
    else:
        return []
    out = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append(one_line(item))
    return out


def opt_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def decode_text(data: bytes, rel: str, strict: bool) -> tuple[str | None, Problem | None]:
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


def read_text(path: Path, rel: str, strict: bool) -> tuple[str | None, Problem | None]:
    """The text of a paper-list file, or the one Problem that keeps it from being read: the
    checks Markdown notes get (a regular file, at most MAX_DATA_BYTES, no NUL byte near the
    start; UTF-8 unless `strict` is False, as BibTeX may be Windows-1252)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None, Problem(rel, None, "not a regular file")
        if st.st_size > MAX_DATA_BYTES:
            return None, too_big(rel, st.st_size)
        with open(path, "rb") as f:
            data = f.read(MAX_DATA_BYTES + 1)  # it may have grown since stat()
    except OSError as e:
        return None, Problem(rel, None, f"cannot read file: {e.strerror or e}")
    if len(data) > MAX_DATA_BYTES:
        return None, too_big(rel, len(data))
    if b"\x00" in data[:BINARY_SNIFF]:
        return None, Problem(rel, None, "binary file (NUL byte), not a text note")
    return decode_text(data, rel, strict)


def too_big(rel: str, size: int) -> Problem:
    mb = MAX_DATA_BYTES / (1024 * 1024)
    return Problem(
        rel, None, f"{size} bytes is over the {mb:g} MB limit for a paper list; split it"
    )
