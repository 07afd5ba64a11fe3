"""The records every reader produces: one `Record` per place a paper is mentioned."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field


@dataclass
class Record:
    """One mention of a paper in one file under notes/.

    A paper mentioned in several files (or twice in one) gives several records; `merge`
    in `search.library` joins them into one `Paper`.

    Attributes:
        title: the paper's title, clean text (no markup, mojibake repaired).
        file: path of the source file, relative to the notes folder, with '/' separators.
        line: 1-based line where the mention starts.
        section: heading path, outermost first (e.g. ["Embedding"]).
        note: what the reader wrote about the paper ("" if nothing).
        abstract: the paper's abstract ("" if unknown).
        arxiv: bare arXiv id such as "1707.01495" (no version, no prefix), or None.
        doi: lower-case DOI such as "10.1109/cvpr.2020.00123", or None.
        url: the main link for the paper, or None.
        authors: author names as written.
        year: publication year, or None.
        venue: venue name, or None.
        tags: keywords / tags.
        extra: any other fields worth keeping (strings only), e.g. {"abstract_source": "arxiv"}.
        pages: full text with a place to cite, as [file, page label, text] triples: the pages
            of a PDF (label "3"), or Zotero's extracted full text (label ""). Kept apart from
            `note` so each chunk of it can say which page it came from.
        aliases: other names the paper goes by, e.g. "ResNeXt" from `# [Title](url) (ResNeXt)`.
    """

    title: str
    file: str
    line: int
    section: list[str] = field(default_factory=list)
    note: str = ""
    abstract: str = ""
    arxiv: str | None = None
    doi: str | None = None
    url: str | None = None
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    tags: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    pages: list[list[str]] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


@dataclass
class Problem:
    """Something in the notes that could not be read; reported, then skipped."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass
class FileResult:
    """What reading one file gave."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # How the file was read ("list of 12 papers", "one paper", "skipped", "data") and why.
    reading: str = ""
    reason: str = ""
    entries: int = 0  # of a list: entries with evidence (links to papers or notes, tags)
    # Why the reading rests on weak evidence ("" when it does not): `papers list --files
    # --doubtful` shows these, so a user can settle them in papers.toml.
    unsure: str = ""


# How many problems of one file are listed; the rest are counted in one more line, so a file
# of 700k broken records costs one screen, not 700k lines (and as little in the index's cache).
PROBLEMS_PER_FILE = 5


def summarise_problems(problems: list[Problem], keep: int = PROBLEMS_PER_FILE) -> list[Problem]:
    """The first `keep` problems of each file, then one line per file counting the rest."""
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.file] = counts.get(p.file, 0) + 1
    if all(n <= keep for n in counts.values()):
        return problems
    out: list[Problem] = []
    seen: dict[str, int] = {}
    for p in problems:
        n = seen[p.file] = seen.get(p.file, 0) + 1
        if n <= keep:
            out.append(p)
        if n == counts[p.file] and n > keep:
            out.append(Problem(p.file, None, f"... and {n - keep} more problems in this file"))
    return out


# arXiv identifiers: new style (2007 on) "1707.01495", old style "hep-th/9901001" or
# "math.AG/0601001"; either may carry a version ("v2"). The one definition in the package.
ARXIV_NEW_ID = r"\d{4}\.\d{4,5}"
ARXIV_OLD_ID = r"[a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_NEW = re.compile(rf"({ARXIV_NEW_ID})(v\d+)?", re.I)
_ARXIV_OLD = re.compile(rf"({ARXIV_OLD_ID})(v\d+)?", re.I)
_ARXIV_WHOLE = re.compile(rf"(arxiv:)?\s*({ARXIV_NEW_ID}|{ARXIV_OLD_ID})(v\d+)?", re.I)


# What ftfy is run for: HTML entities ("&amp;", "&#233;") and mojibake (UTF-8 read as
# Latin-1/cp1252 always shows a lead byte Â..ô followed by a continuation byte U+0080..U+00BF
# or one of the cp1252 letters those bytes map to). Other text is only NFC-normalised: ftfy
# costs 50-600 µs a string, too slow for 100k-line imports, and its other changes (uncurling
# quotes, ligatures) are not repairs.
_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);")
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6"
    "\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc"
    "\u2122\u0161\u203a\u0153\u017e\u0178]"
)


def _fix(text: str) -> str:
    """ftfy's repairs, for text that may need them (entities or mojibake)."""
    entity = "&" in text and _ENTITY.search(text)
    if not entity and (text.isascii() or not _MOJIBAKE_HINT.search(text)):
        return text
    import ftfy  # lazy: 60 ms to import, and most commands never repair text

    return ftfy.fix_text(text)


def clean_text(text: str) -> str:
    """Repair mojibake and HTML entities, normalise Unicode (NFC), strip the ends.

    The one cleaning rule for text read from notes and imports (titles, notes, abstracts).
    """
    text = _fix(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip()


# A lone surrogate (from a JSON or YAML escape such as \ud800 without its pair, or undecodable
# bytes in a command-line argument) cannot be encoded as UTF-8: SQLite, JSON output and the
# terminal would all fail on it. Readers replace them with U+FFFD and report a Problem.
SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_MESSAGE = (
    "lone surrogate (an escape such as \\ud800 without its pair) replaced with U+FFFD"
)


def scrub_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (valid text is returned as is)."""
    return SURROGATE.sub("\ufffd", text) if SURROGATE.search(text) else text


def scrub_record(record: Record) -> bool:
    """Replace lone surrogates in every text field of `record`; True if any was found."""
    found = False

    def fix(value: str) -> str:
        nonlocal found
        if SURROGATE.search(value):
            found = True
            return SURROGATE.sub("\ufffd", value)
        return value

    for name in ("title", "file", "note", "abstract", "arxiv", "doi", "url", "venue"):
        value = getattr(record, name)
        if isinstance(value, str):
            setattr(record, name, fix(value))
    for name in ("section", "authors", "tags"):
        setattr(record, name, [fix(v) for v in getattr(record, name)])
    record.extra = {fix(k): fix(v) for k, v in record.extra.items()}
    return found


_NON_WORD = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=1 << 17)
def normalise_title(title: str) -> str:
    """The key two mentions of one paper share: case, accents, punctuation and dashes ignored.

    Cached: a rebuild asks for the same title's key several times (merge, ids, storage).

    >>> normalise_title("Self2Self With Dropout: Learning Self-Supervised Denoising")
    'self2self with dropout learning self supervised denoising'
    """
    text = _fix(title)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def parse_arxiv_id(text: str) -> str | None:
    """The bare arXiv id in an id, an abs/pdf URL or 'arXiv:...' text, without its version."""
    if not text:
        return None
    m = _ARXIV_NEW.search(text)
    if m:
        return m.group(1)
    m = _ARXIV_OLD.search(text)
    if m:
        return m.group(1).lower()
    return None


def looks_like_arxiv_id(text: str) -> bool:
    """True if the whole of `text` is an arXiv id ("1707.01495v2", "arXiv:hep-th/9901001") or
    it is an arxiv.org link."""
    return bool(_ARXIV_WHOLE.fullmatch(text)) or "arxiv.org/" in text


def normalise_doi(text: str | None) -> str | None:
    """Lower-case DOI without a resolver prefix, or None."""
    if not text:
        return None
    m = re.search(r"(10\.\d{4,9}/\S+)", text.strip())
    return m.group(1).rstrip(".").lower() if m else None


# Where a JSON object of a paper keeps its link, best first: its own page before its PDF.
# Scrapers and exports spell it many ways (Papers with Code: url_abs/url_pdf; OpenAlex: the
# landing page and PDF of primary_location, else best_oa_location).
_LINK_KEYS = ("url", "page_url", "landing_page_url", "url_abs", "link", "pdf_url", "pdf", "url_pdf")
_LOCATION_KEYS = ("primary_location", "best_oa_location")


def link_of(obj: dict[str, object]) -> str | None:
    """The best web link a paper's JSON object gives (an http(s) URL), or None."""
    places: list[object] = [obj]
    places += [obj.get(k) for k in _LOCATION_KEYS]
    for keys in (_LINK_KEYS[:5], _LINK_KEYS[5:]):  # any page before any PDF
        for place in places:
            if not isinstance(place, dict):
                continue
            for key in keys:
                value = place.get(key)
                if isinstance(value, str) and re.match(r"https?://\S+$", value.strip()):
                    return value.strip()
    return None
