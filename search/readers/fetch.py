"""Fetch missing abstracts from arXiv, OpenAlex or Semantic Scholar into a notes file."""

from __future__ import annotations

import email.utils
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import httpx
from rapidfuzz import fuzz

from search.errors import FetchError
from search.library import Paper
from search.readers.fields import unwrap
from search.readers.jsonl import SKIP_STATUSES
from search.readers.records import normalise_doi, normalise_title, parse_arxiv_id
from search.version import __version__

SOURCES = ("arxiv", "openalex", "semanticscholar")
DEFAULT_BASE_URLS = {
    "arxiv": "https://export.arxiv.org/api/query",
    "openalex": "https://api.openalex.org",
    "semanticscholar": "https://api.semanticscholar.org/graph/v1",
}
# Seconds between requests each service asks for: arXiv's API terms say one request every
# 3 s; OpenAlex allows 10 a second; Semantic Scholar shares ~1/s among unauthenticated users.
DEFAULT_DELAYS = {"arxiv": 3.0, "openalex": 0.1, "semanticscholar": 1.0}
CONTACT_ENV = "PAPERS_CONTACT"
# token_sort_ratio of normalised titles (0-100). 95, not 90: one inserted word in a short
# title ("Attention Is [Not] All You Need" 92.6, "Learning to Learn [without] Gradient
# Descent..." 90.8) scores between the two, and a wrong abstract silently attached to a paper
# costs more than a miss, which is recorded and reported.
THRESHOLD = 95.0
MAX_RETRIES = 5
RETRY_BASE = 1.0  # seconds; doubled on each retry when the server gives no Retry-After
MAX_WAIT = 300.0  # a longer Retry-After stops the run instead of hanging it
TIMEOUT = 30.0

# Indirections so tests can observe waits without sleeping.
_sleep = time.sleep
_clock = time.monotonic

ProgressFn = Callable[[int, int, str, str], None]


@dataclass
class Match:
    """One candidate paper a service returned."""

    title: str
    abstract: str
    arxiv: str | None = None
    doi: str | None = None
    url: str | None = None
    year: int | None = None
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class FetchItem:
    """What happened to one paper."""

    title: str
    status: str  # found | not_found | no_abstract | error
    score: float | None = None
    matched_title: str | None = None
    message: str = ""


@dataclass
class FetchReport:
    """What `fetch_abstracts` did."""

    source: str
    out_path: Path
    without_abstract: int = 0
    already_done: int = 0
    looked_up: int = 0
    found: int = 0
    not_found: int = 0
    errors: int = 0
    items: list[FetchItem] = field(default_factory=list)


class _Unreachable(Exception):
    """The service cannot be reached at all (no route, DNS, refused)."""


class _Overloaded(Exception):
    """The service kept answering 429/5xx after every retry."""


class _BadAnswer(Exception):
    """One request got an answer that cannot be used (4xx, unparseable); skip that paper."""


def similarity(a: str, b: str) -> float:
    """How alike two titles are, 0-100, ignoring case, accents, punctuation and word order."""
    return float(fuzz.token_sort_ratio(normalise_title(a), normalise_title(b)))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class _Polite:
    """One request at a time, `delay` seconds apart, retrying 429/5xx with backoff."""

    def __init__(self, client: httpx.Client, delay: float, user_agent: str, host: str) -> None:
        self.client = client
        self.delay = delay
        self.headers = {"User-Agent": user_agent}
        self.host = host
        self.last: float | None = None  # when the last answer came
        self.succeeded = False

    def _wait_turn(self) -> None:
        if self.last is not None and self.delay > 0:
            wait = self.delay - (_clock() - self.last)
            if wait > 0:
                _sleep(wait)

    def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response | None:
        """The response, or None for 404 (the service does not know the id)."""
        for attempt in range(MAX_RETRIES + 1):
            self._wait_turn()
            try:
                response = self.client.get(url, params=params, headers=self.headers)
            except httpx.ConnectError as e:
                raise _Unreachable(str(e) or type(e).__name__) from None
            except httpx.TransportError as e:
                # A timeout or a dropped connection mid-answer: worth another try.
                if attempt == MAX_RETRIES:
                    raise _Unreachable(str(e) or type(e).__name__) from None
                _sleep(max(RETRY_BASE * 2**attempt, self.delay))
                self.last = None
                continue
            self.last = _clock()
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt == MAX_RETRIES:
                    raise _Overloaded(f"{self.host} answered {status} {MAX_RETRIES + 1} times")
                wait = _retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = RETRY_BASE * 2**attempt
                elif wait > MAX_WAIT:
                    raise _Overloaded(f"{self.host} asks to wait {wait:.0f} s before asking again")
                _sleep(max(wait, self.delay))
                self.last = None  # the backoff already spaced this request from the last
                continue
            self.succeeded = True
            if status == 404:
                return None
            if status >= 400:
                raise _BadAnswer(f"{self.host} answered {status}")
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(url, params)
        if response is None:
            return None
        try:
            return response.json()
        except ValueError:
            raise _BadAnswer(f"{self.host} sent something that is not JSON") from None


# --- arXiv ----------------------------------------------------------------------------------

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"


def _year_of(text: str | None) -> int | None:
    if text and text[:4].isdigit():
        return int(text[:4])
    return None


def parse_arxiv_feed(content: bytes) -> list[Match]:
    """Entries of an arXiv API Atom feed (error entries, whose id is not an /abs/ URL, dropped)."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        raise _BadAnswer("arXiv sent something that is not an Atom feed") from None
    matches = []
    for entry in root.iter(f"{_ATOM}entry"):
        entry_id = (entry.findtext(f"{_ATOM}id") or "").strip()
        if "/abs/" not in entry_id:
            continue
        arxiv = parse_arxiv_id(entry_id.split("/abs/", 1)[1])
        title = " ".join((entry.findtext(f"{_ATOM}title") or "").split())
        summary = unwrap(entry.findtext(f"{_ATOM}summary") or "")
        matches.append(
            Match(
                title=title,
                abstract=summary,
                arxiv=arxiv,
                doi=normalise_doi(entry.findtext(f"{_ARXIV}doi")),
                url=f"https://arxiv.org/abs/{arxiv}" if arxiv else entry_id,
                year=_year_of(entry.findtext(f"{_ATOM}published")),
                ids={"arxiv": arxiv} if arxiv else {},
            )
        )
    return matches


def _arxiv_from_doi(doi: str | None) -> str | None:
    # arXiv registers DOIs 10.48550/arXiv.<id> for every paper.
    if doi and doi.startswith("10.48550/arxiv."):
        return parse_arxiv_id(doi.split("arxiv.", 1)[1])
    return None


class _ArxivSource:
    name = "arxiv"

    def __init__(self, http: _Polite, base: str, contact: str | None) -> None:
        self.http, self.base = http, base

    def by_id(self, arxiv: str | None, doi: str | None) -> tuple[list[Match], str]:
        arxiv = arxiv or _arxiv_from_doi(doi)
        if not arxiv:
            return [], ""
        response = self.http.get(self.base, {"id_list": arxiv, "max_results": 1})
        return (parse_arxiv_feed(response.content) if response else []), "arxiv id"

    def by_title(self, title: str) -> list[Match]:
        # A phrase search on the title field; punctuation dropped, as the query syntax uses it.
        words = normalise_title(title)
        if not words:
            return []
        query = f'ti:"{words}"'
        response = self.http.get(self.base, {"search_query": query, "max_results": 5})
        return parse_arxiv_feed(response.content) if response else []


# --- OpenAlex -------------------------------------------------------------------------------


def abstract_from_inverted_index(index: Any) -> str:
    """Text of an OpenAlex `abstract_inverted_index` ({word: [positions]})."""
    if not isinstance(index, dict):
        return ""
    placed: list[tuple[int, str]] = []
    for word, positions in index.items():
        if isinstance(positions, list):
            placed.extend((p, str(word)) for p in positions if isinstance(p, int))
    placed.sort()
    return " ".join(word for _, word in placed)


def parse_openalex_work(work: Any) -> Match | None:
    """A Match from one OpenAlex work object."""
    if not isinstance(work, dict):
        return None
    doi = normalise_doi(work.get("doi") if isinstance(work.get("doi"), str) else None)
    arxiv = _arxiv_from_doi(doi)
    locations: list[Any] = [work.get("primary_location")]
    if isinstance(work.get("locations"), list):
        locations.extend(work["locations"])
    for loc in locations:
        if arxiv is None and isinstance(loc, dict):
            landing = loc.get("landing_page_url")
            if isinstance(landing, str) and "arxiv.org/abs/" in landing:
                arxiv = parse_arxiv_id(landing)
    ids: dict[str, str] = {}
    openalex_id = work.get("id")
    if isinstance(openalex_id, str) and openalex_id:
        ids["openalex"] = openalex_id.rsplit("/", 1)[-1]
    year = work.get("publication_year")
    return Match(
        title=" ".join(str(work.get("title") or work.get("display_name") or "").split()),
        abstract=abstract_from_inverted_index(work.get("abstract_inverted_index")),
        arxiv=arxiv,
        doi=doi,
        url=f"https://doi.org/{doi}" if doi else (openalex_id or None),
        year=year if isinstance(year, int) else None,
        ids=ids,
    )


class _OpenAlexSource:
    name = "openalex"

    def __init__(self, http: _Polite, base: str, contact: str | None) -> None:
        self.http, self.base = http, base.rstrip("/")
        # The polite pool: faster and steadier answers for requests that say who sends them.
        self.params = {"mailto": contact} if contact else {}

    def _work(self, doi: str) -> list[Match]:
        work = self.http.get_json(f"{self.base}/works/doi:{doi}", dict(self.params))
        match = parse_openalex_work(work) if work is not None else None
        return [match] if match else []

    def by_id(self, arxiv: str | None, doi: str | None) -> tuple[list[Match], str]:
        if doi:
            return self._work(doi), "doi"
        if arxiv:
            return self._work(f"10.48550/arxiv.{arxiv}"), "arxiv doi"
        return [], ""

    def by_title(self, title: str) -> list[Match]:
        # Commas separate filters in OpenAlex's syntax, so the normalised title is used.
        words = normalise_title(title)
        if not words:
            return []
        params = {**self.params, "filter": f"title.search:{words}", "per-page": 5}
        data = self.http.get_json(f"{self.base}/works", params)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            return []
        return [m for m in (parse_openalex_work(w) for w in results) if m]


# --- Semantic Scholar -----------------------------------------------------------------------

_S2_FIELDS = "title,abstract,externalIds,year,url"


def parse_s2_paper(paper: Any) -> Match | None:
    """A Match from one Semantic Scholar Graph API paper object."""
    if not isinstance(paper, dict):
        return None
    ext: dict[str, Any] = paper["externalIds"] if isinstance(paper.get("externalIds"), dict) else {}
    arxiv_raw = ext.get("ArXiv")
    doi_raw = ext.get("DOI")
    arxiv = parse_arxiv_id(arxiv_raw) if isinstance(arxiv_raw, str) else None
    doi = normalise_doi(doi_raw) if isinstance(doi_raw, str) else None
    ids = {"s2": str(paper["paperId"])} if paper.get("paperId") else {}
    year = paper.get("year")
    url = paper.get("url")
    return Match(
        title=" ".join(str(paper.get("title") or "").split()),
        abstract=unwrap(paper.get("abstract") or "")
        if isinstance(paper.get("abstract"), str)
        else "",
        arxiv=arxiv,
        doi=doi,
        url=url if isinstance(url, str) and url else None,
        year=year if isinstance(year, int) else None,
        ids=ids,
    )


class _SemanticScholarSource:
    name = "semanticscholar"

    def __init__(self, http: _Polite, base: str, contact: str | None) -> None:
        self.http, self.base = http, base.rstrip("/")

    def _paper(self, key: str) -> list[Match]:
        data = self.http.get_json(f"{self.base}/paper/{key}", {"fields": _S2_FIELDS})
        match = parse_s2_paper(data) if data is not None else None
        return [match] if match else []

    def by_id(self, arxiv: str | None, doi: str | None) -> tuple[list[Match], str]:
        if arxiv:
            return self._paper(f"arXiv:{arxiv}"), "arxiv id"
        if doi:
            return self._paper(f"DOI:{doi}"), "doi"
        return [], ""

    def by_title(self, title: str) -> list[Match]:
        # The docs: hyphenated terms match nothing, so punctuation goes (normalise_title).
        words = normalise_title(title)
        if not words:
            return []
        params = {"query": words, "fields": _S2_FIELDS, "limit": 5}
        data = self.http.get_json(f"{self.base}/paper/search", params)
        results = data.get("data") if isinstance(data, dict) else None
        if not isinstance(results, list):
            return []
        return [m for m in (parse_s2_paper(p) for p in results) if m]


_SOURCE_CLASSES: dict[str, Any] = {
    "arxiv": _ArxivSource,
    "openalex": _OpenAlexSource,
    "semanticscholar": _SemanticScholarSource,
}


# --- the fetch loop -------------------------------------------------------------------------


def _ids(paper: Paper) -> tuple[str | None, str | None]:
    """The paper's arXiv id and DOI in canonical form (records built by hand may not be)."""
    return (parse_arxiv_id(paper.arxiv) if paper.arxiv else None), normalise_doi(paper.doi)


def _paper_keys(paper: Paper) -> set[str]:
    keys = {"t:" + normalise_title(r.title) for r in paper.records if r.title}
    arxiv, doi = _ids(paper)
    if arxiv:
        keys.add("a:" + arxiv)
    if doi:
        keys.add("d:" + doi)
    keys.discard("t:")
    return keys


def _done_keys(out_path: Path, source: str) -> set[str]:
    """Keys of papers `out_path` already answers: any found abstract, and papers this source
    could not find (another source may still know them)."""
    keys: set[str] = set()
    try:
        text = out_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return keys
    except OSError as e:
        raise FetchError(f"cannot read {out_path}: {e.strerror or e}") from None
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("status") in SKIP_STATUSES and obj.get("source") != source:
            continue
        if isinstance(obj.get("title"), str) and normalise_title(obj["title"]):
            keys.add("t:" + normalise_title(obj["title"]))
        if isinstance(obj.get("arxiv"), str) and obj["arxiv"]:
            keys.add("a:" + obj["arxiv"])
        if isinstance(obj.get("doi"), str) and obj["doi"]:
            keys.add("d:" + obj["doi"])
    return keys


class _Appender:
    """Appends JSON lines to the out file, opened only when the first line is ready, so a run
    that fetches nothing leaves the file untouched; each line is flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: TextIO | None = None

    def write(self, obj: dict[str, Any]) -> None:
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = False
            if self.path.is_file() and self.path.stat().st_size:
                with self.path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    needs_newline = f.read(1) != b"\n"
            self.file = self.path.open("a", encoding="utf-8")
            if needs_newline:
                self.file.write("\n")
        self.file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _line_for(paper: Paper, source: str, status: str, **fields: Any) -> dict[str, Any]:
    # The paper's own title is kept as `title` so merge() joins this line to the paper.
    obj: dict[str, Any] = {"title": paper.title}
    obj.update({k: v for k, v in fields.items() if v not in (None, "", [], {})})
    obj["source"] = source
    if status != "found":
        obj["status"] = status
    obj["fetched"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return obj


def user_agent(contact: str | None) -> str:
    """The User-Agent the services see: who runs this, so they can ask before blocking."""
    return f"papers/{__version__} (mailto:{contact})" if contact else f"papers/{__version__}"


def _check_base_url(base: str) -> str:
    """The host of `base`; a URL that can never work (file://, another scheme, no host) is an
    error at once, before any retry or backoff."""
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, TypeError) as e:
        raise FetchError(f"the base URL {base!r} is not a URL ({e}): give an http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchError(f"the base URL {base!r} is not an http(s) URL with a host: give one")
    return url.host


def fetch_abstracts(
    papers: Iterable[Paper],
    out_path: Path,
    *,
    source: str = "arxiv",
    limit: int | None = None,
    base_url: str | None = None,
    contact: str | None = None,
    delay: float | None = None,
    progress: ProgressFn | None = None,
    client: httpx.Client | None = None,
) -> FetchReport:
    """Look up abstracts of papers that have none and append them to `out_path` (JSON lines).

    Papers already answered in `out_path` are skipped, so an interrupted run resumes. Each
    line is written and flushed as soon as it is fetched. Raises FetchError when the service
    cannot be reached (nothing written if that happens on the first request) or stays
    overloaded.
    """
    if source not in SOURCES:
        raise FetchError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    base = base_url or DEFAULT_BASE_URLS[source]
    host = _check_base_url(base)
    contact = contact or os.environ.get(CONTACT_ENV) or None
    wait = DEFAULT_DELAYS[source] if delay is None else max(0.0, delay)
    report = FetchReport(source=source, out_path=out_path)

    todo = _to_look_up(papers, _done_keys(out_path, source), report)
    if limit is not None:
        todo = todo[: max(0, limit)]
    if not todo:
        return report

    own_client = client is None
    http_client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    http = _Polite(http_client, wait, user_agent(contact), host)
    service = _SOURCE_CLASSES[source](http, base, contact)
    out = _Appender(out_path)
    try:
        for n, paper in enumerate(todo, start=1):
            try:
                item, line = _fetch_one(service, paper, source)
            except _Unreachable as e:
                if not http.succeeded and out.file is None:
                    raise FetchError(f"cannot reach {host}: {e}; nothing changed") from None
                raise FetchError(
                    f"lost the connection to {host}: {e}; {report.found} abstracts fetched "
                    f"before that are saved in {out_path}"
                ) from None
            except _Overloaded as e:
                raise FetchError(
                    f"{e}; try again later ({report.found} abstracts saved in {out_path})"
                ) from None
            except _BadAnswer as e:
                item, line = FetchItem(paper.title, "error", message=str(e)), None
            if line is not None:
                out.write(line)
            report.looked_up += 1
            report.items.append(item)
            if item.status == "found":
                report.found += 1
            elif item.status == "error":
                report.errors += 1
            else:
                report.not_found += 1
            if progress is not None:
                progress(n, len(todo), paper.title, item.status)
    finally:
        out.close()
        if own_client:
            http_client.close()
    return report


def _to_look_up(papers: Iterable[Paper], done: set[str], report: FetchReport) -> list[Paper]:
    """The papers without an abstract that `out_path` has not answered yet (counted in
    `report`)."""
    todo: list[Paper] = []
    for paper in papers:
        if paper.abstract:
            continue
        report.without_abstract += 1
        if _paper_keys(paper) & done:
            report.already_done += 1
            continue
        todo.append(paper)
    return todo


def _fetch_one(service: Any, paper: Paper, source: str) -> tuple[FetchItem, dict[str, Any]]:
    title = paper.title
    best: Match | None = None
    score = 0.0
    how = ""
    arxiv, doi = _ids(paper)
    candidates, how = service.by_id(arxiv, doi)
    tried = [how] if how else []
    if candidates:
        # An id the notes give is the paper's identity (merge joins on it too), so the id's
        # record is taken even when the note's title is a nickname; the score is kept.
        best = candidates[0]
        score = similarity(title, best.title)
    else:
        how = "title search"
        scored = [(similarity(title, m.title), m) for m in service.by_title(title)]
        if scored:
            score, best = max(scored, key=lambda sm: sm[0])
            if score < THRESHOLD:
                message = f"closest title scored {score:.0f} (< {THRESHOLD:.0f}): {best.title!r}"
                item = FetchItem(title, "not_found", round(score, 1), best.title, message)
                line = _line_for(
                    paper,
                    source,
                    "not_found",
                    arxiv=arxiv,
                    doi=doi,
                    reason=message,
                )
                return item, line
    if best is None:
        message = f"no match by {' or '.join([*tried, 'title search'])}"
        item = FetchItem(title, "not_found", message=message)
        return item, _line_for(paper, source, "not_found", arxiv=arxiv, doi=doi, reason=message)
    fields: dict[str, Any] = {
        "arxiv": best.arxiv or arxiv,
        "doi": best.doi or doi,
        "url": best.url,
        "year": best.year,
        "matched_title": best.title,
        "score": round(score, 1),
        "lookup": how,
    }
    fields.update({f"{k}_id": v for k, v in best.ids.items() if k not in ("arxiv",)})
    if not best.abstract:
        message = f"{source} has the paper but no abstract for it"
        item = FetchItem(title, "no_abstract", round(score, 1), best.title, message)
        return item, _line_for(paper, source, "no_abstract", **fields)
    item = FetchItem(title, "found", round(score, 1), best.title)
    return item, _line_for(paper, source, "found", abstract=best.abstract, **fields)
