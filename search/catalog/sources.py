"""Reading the files `papers catalog add` takes (arXiv snapshot, OpenAlex export, BEIR corpus,
JSON lines) into catalog rows, streamed line by line, with the filters (--since, --category)
applied as they are read; and the key and text hash that identify a catalog paper."""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import CatalogError
from search.readers.jsonl import record_from_object, scrub_json_line
from search.readers.records import Record, normalise_title


@dataclass
class CatalogPaper:
    """One catalog paper."""

    cid: int
    key: str
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    year: int | None = None
    categories: list[str] = field(default_factory=list)
    arxiv: str | None = None
    doi: str | None = None
    url: str | None = None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "id": self.key,
            "title": self.title,
            "abstract": self.abstract,
            "authors": self.authors,
            "date": self.date,
            "year": self.year,
            "categories": self.categories,
            "arxiv": self.arxiv,
            "doi": self.doi,
            "url": self.url,
            "source": self.source,
        }


def text_of(title: str, abstract: str) -> str:
    """What is embedded for a catalog paper: its title, then its abstract."""
    return f"{title}\n{abstract}".strip()


def text_hash(text: str) -> int:
    """64-bit content hash as a signed int (SQLite INTEGER, numpy int64). At 3M texts the
    chance of any collision is about 2.4e-7."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def paper_key(record: Record) -> str:
    """One paper, whichever file it came from: arXiv id, else DOI, else normalised title."""
    if record.arxiv:
        return f"arxiv:{record.arxiv}"
    if record.doi:
        return f"doi:{record.doi}"
    return "title:" + normalise_title(record.title)


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _date_of(obj: dict[str, Any]) -> str | None:
    """Publication date as YYYY-MM-DD: arXiv's first version, else a date field."""
    versions = obj.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        created = versions[0].get("created")
        if isinstance(created, str):
            try:
                return email.utils.parsedate_to_datetime(created).date().isoformat()
            except (TypeError, ValueError):
                pass
    for key in ("publication_date", "published", "date", "update_date", "created"):
        value = obj.get(key)
        if isinstance(value, str):
            m = _ISO_DATE.search(value)
            if m:
                return m.group(0)
    return None


def _openalex_abstract(index: Any) -> str:
    """OpenAlex ships abstracts as {word: [positions]}: put the words back in order."""
    if not isinstance(index, dict):
        return ""
    slots: dict[int, str] = {}
    for word, places in index.items():
        if isinstance(places, list):
            for p in places:
                if isinstance(p, int) and 0 <= p < 100_000:
                    slots[p] = str(word)
    return " ".join(slots[p] for p in sorted(slots))


def _normalise_object(obj: dict[str, Any]) -> dict[str, Any]:
    """OpenAlex works: display_name and inverted-index abstracts become title and abstract."""
    if "abstract_inverted_index" in obj and not obj.get("abstract"):
        obj = dict(obj, abstract=_openalex_abstract(obj.get("abstract_inverted_index")))
        obj.pop("abstract_inverted_index", None)
        if isinstance(obj.get("publication_year"), int) and "year" not in obj:
            obj["year"] = obj["publication_year"]
    if not obj.get("title") and isinstance(obj.get("display_name"), str):
        obj = dict(obj, title=obj["display_name"])
    return obj


@dataclass(frozen=True)
class Filters:
    """Which papers of a source to keep: any of `categories` (a prefix such as "cs" matches
    "cs.CV"), published on or after `since` (YYYY-MM-DD)."""

    categories: tuple[str, ...] = ()
    since: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "since": self.since}

    def raw_may_match(self, line: bytes) -> bool:
        # A cheap test on the raw line first: parsing JSON is most of the cost of reading a
        # 4.5 GB snapshot, and a category filter rejects most lines.
        return not self.categories or any(c.encode() in line for c in self.categories)

    def keeps(self, categories: list[str], date: str | None, year: int | None) -> bool:
        if self.categories and not any(
            c == want or c.startswith(want + ".") for c in categories for want in self.categories
        ):
            return False
        if self.since:
            if date is not None:
                return date >= self.since
            return year is not None and year > int(self.since[:4])
        return True


def check_since(value: str | None) -> str | None:
    """A --since value as YYYY-MM-DD (YYYY-MM and YYYY are accepted), or a CatalogError."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", value.strip())
    if not m:
        raise CatalogError(f"--since {value!r}: give a date as YYYY-MM-DD")
    year, month, day = m.group(1), m.group(2) or "01", m.group(3) or "01"
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        raise CatalogError(f"--since {value!r}: not a date")
    return f"{year}-{month}-{day}"


@dataclass
class SourceRow:
    """A paper read from a source file, before it is stored."""

    record: Record
    date: str | None


def read_source(
    path: Path, filters: Filters, problems: list[str], max_problems: int = 100
) -> Iterator[SourceRow]:
    """Papers of one JSON-lines file (arXiv snapshot, OpenAlex, BEIR corpus, title/abstract
    objects), streamed. Bad lines are counted in `problems` (the first `max_problems` named)."""

    name = path.name
    bad = 0

    def problem(number: int, message: str) -> None:
        nonlocal bad
        bad += 1
        if len(problems) < max_problems:
            problems.append(f"{name}:{number}: {message}")

    try:
        fh = path.open("rb")
    except OSError as e:
        raise CatalogError(f"cannot read {path}: {e.strerror or e}") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip() or not filters.raw_may_match(raw):
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                # ValueError covers bad UTF-8 too (json.loads decodes bytes itself).
                problem(number, "not valid JSON")
                continue
            if not isinstance(obj, dict):
                problem(number, "not a JSON object")
                continue
            obj, _scrubbed = scrub_json_line(raw, obj)  # text stays, U+FFFD for each one
            obj = _normalise_object(obj)
            try:
                record = record_from_object(obj, name, number, name)
            except (ValueError, TypeError, KeyError, RecursionError) as e:
                problem(number, f"cannot read record: {e}")
                continue
            if record is None:
                continue
            if not record.title:
                problem(number, "no title")
                continue
            date = _date_of(obj)
            categories = record.tags if record.extra.get("source") == "arxiv" else []
            if not categories and isinstance(obj.get("categories"), str):
                categories = obj["categories"].split()
            record.tags = categories
            if not filters.keeps(categories, date, record.year):
                continue
            yield SourceRow(record, date)
    if bad > len(problems):
        problems.append(f"{name}: {bad} unreadable lines in all")
