"""References as people cite them: `Authors. Title. Venue Year. URL`, or the title in quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from search.readers.markdown.links import _BARE_URL
from search.readers.markdown.titles import _YEAR, _split_authors, _venue_year

# Words before a '.' that do not end a sentence in a citation: initials are handled apart.
_ABBREVIATIONS = {"vs", "e.g", "i.e", "etc", "ph.d", "pp", "vol", "no", "jr", "dr", "eds", "ed"}


@dataclass
class _Citation:
    title: str
    authors: list[str]
    year: int | None
    venue: str | None


def _sentences(text: str) -> list[str]:
    """Split a citation at '. ', keeping initials (`James R. Curran`) and abbreviations."""
    out, start = [], 0
    for m in re.finditer(r"\.\s+", text):
        word = (
            text[start : m.start()].rsplit(None, 1)[-1] if text[start : m.start()].split() else ""
        )
        if (len(word) == 1 and word.isupper()) or word.lower() in _ABBREVIATIONS:
            continue
        out.append(text[start : m.start()].strip())
        start = m.end()
    out.append(text[start:].strip().rstrip("."))
    return [s for s in out if s]


def _looks_like_authors(text: str) -> bool:
    if ":" in text or "?" in text or not text:
        return False
    words = [w for w in re.split(r"[\s,]+", text) if w]
    if not 1 <= len(words) <= 30:
        return False
    names = [w for w in words if w.lower() not in ("and", "et", "al", "&", "al.")]
    capital = sum(w[0].isupper() for w in names)
    if re.search(r"\bet al\b|\band\b|&|,", text):
        return capital * 10 >= len(names) * 6
    return 2 <= len(names) <= 4 and capital == len(names)


def _citation(text: str) -> _Citation | None:
    """A reference as people cite it: `Authors. Title. Venue Year. URL` (or with the title in
    quotes); None when the text is not one."""
    if len(text) > 1000 or ". " not in text and '"' not in text and "\u201c" not in text:
        return None
    quoted = re.search(r'["\u201c]([^"\u201d]{8,})["\u201d]', text)
    if quoted and _looks_like_authors(text[: quoted.start()].strip(" ,.")):
        rest = text[quoted.end() :]
        found = _YEAR.search(rest)
        return _Citation(
            quoted.group(1).strip(" ,."),
            _split_authors(text[: quoted.start()].strip(" ,.")),
            int(found.group(1)) if found else None,
            None,
        )
    parts = _sentences(text)
    if len(parts) < 2 or not _looks_like_authors(parts[0]) or _YEAR.search(parts[0]):
        return None
    title_at = next(
        (
            k
            for k in range(1, len(parts))
            if not _BARE_URL.match(parts[k])
            and _venue_year(parts[k]) == (None, None)
            or (not _BARE_URL.match(parts[k]) and len(parts[k].split()) > 6)
        ),
        None,
    )
    if title_at is None:
        return None
    title = parts[title_at]
    if len(title.split()) < 2 or title.startswith("["):
        return None
    cut = re.fullmatch(r"(.*[?!])\s+[A-Z][\w&\-]*\s+(?:19|20)\d\d", title)
    title_year = None
    if cut:
        title, title_year = cut.group(1), int(_YEAR.findall(parts[title_at])[-1])
    after = [p for p in parts[title_at + 1 :] if not _BARE_URL.match(p)]
    years = [int(y) for p in after for y in _YEAR.findall(_BARE_URL.sub("", p))]
    before = [int(y) for p in parts[1:title_at] for y in _YEAR.findall(p)]
    year = title_year or (years[-1] if years else before[-1] if before else None)
    has_url = bool(_BARE_URL.search(text))
    strong_authors = re.search(r"\bet al\b|\band\b", parts[0]) is not None
    if year is None and not has_url and not strong_authors:
        return None
    venue = None
    if after:
        v, _ = _venue_year(_BARE_URL.sub("", after[0]).strip())
        venue = v
    return _Citation(title.strip(), _split_authors(parts[0]), year, venue)
