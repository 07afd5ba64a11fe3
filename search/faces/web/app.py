"""The ASGI app behind `papers serve`: server-rendered pages and a JSON API, read-only.

Why it looks like this:
- Starlette + Jinja2, rendered on the server, and a little plain JavaScript for the map only:
  nothing to build, every asset served from search/faces/web/static (no CDN), so it works offline.
- Only GET routes: no endpoint changes notes or index (any other method gets 405).
- The Host header must name the address the server was bound to (TrustedHostMiddleware): a
  page on another site cannot reach this server through DNS rebinding, because its requests
  carry that site's host name.
- One `search.api.Library` for the life of the server: the encoder and index stay loaded, and
  a newly published generation is picked up on the next request. `/api/...` returns exactly
  the CLI's `--json` shapes (search.faces.output).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from search.api import MODES, Ambiguous, Hit, IndexMissing, Library, NotFound, Paper, PapersError
from search.faces import output
from search.faces.web.render import note_href, note_html, numbered_lines, place_link
from search.storage import map as library_map
from search.storage import store

HERE = Path(__file__).parent
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]
MAX_K = 100
NOTE_CHARS = 240

templates = Jinja2Templates(directory=str(HERE / "templates"))


def excerpt(text: str, n: int = NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


templates.env.filters["excerpt"] = excerpt
templates.env.filters["markdown"] = note_html
templates.env.filters["place"] = place_link
templates.env.filters["note_href"] = note_href
# A note file shown on the page is read up to this size (the notes reader's own limit).
NOTE_FILE_BYTES = 20_000_000
# The home page lists at most this many papers to browse (the map shows every one).
BROWSE_MAX = 2000


def browse(papers: list[Paper]) -> list[tuple[str, list[Paper]]]:
    """Papers grouped by their top section, in order of first mention, for the home page."""
    groups: dict[str, list[Paper]] = {}
    for p in papers[:BROWSE_MAX]:
        groups.setdefault(p.section[0] if p.section else "", []).append(p)
    return list(groups.items())


class MapCache:
    """The live generation's map joined with each paper's note, rebuilt when the generation
    changes (a map of 10k papers is read once, not on every request)."""

    def __init__(self, library: Library):
        self.library = library
        self._lock = threading.Lock()
        self._gen: Path | None = None
        self._data: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        with self._lock:
            gen = store.current_generation(self.library.index_dir)
            if gen is None:
                raise IndexMissing("no index yet: run `papers rebuild` first")
            if self._data is None or gen != self._gen:
                self._data = map_payload(
                    library_map.load(self.library.index_dir, self.library.log),
                    self.library.papers(),
                )
                self._gen = gen
            return self._data


def map_payload(m: library_map.LibraryMap, papers: list[Paper]) -> dict[str, Any]:
    """The map as the page draws it: columns rather than one object per point (10k papers)."""
    by_id = {p.id: p for p in papers}
    points = [p for p in m.points if p.id in by_id]
    sections = sorted({(p.section[0] if p.section else "") for p in points})
    section_of = {s: i for i, s in enumerate(sections)}
    return {
        "method": m.method,
        "clusters": [
            {"id": c.id, "label": c.label, "size": c.size, "x": c.x, "y": c.y, "top": c.top}
            for c in m.clusters
        ],
        "sections": sections,
        "ids": [p.id for p in points],
        "titles": [p.title for p in points],
        "notes": [excerpt(by_id[p.id].note or by_id[p.id].abstract, 160) for p in points],
        "where": [by_id[p.id].where for p in points],
        "x": [p.x for p in points],
        "y": [p.y for p in points],
        "cluster": [p.cluster for p in points],
        "section": [section_of[p.section[0] if p.section else ""] for p in points],
    }


def map_json_for_html(payload: dict[str, Any]) -> str:
    """JSON safe to put inside a <script> element."""
    return (
        json.dumps(payload, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def standalone_map_html(payload: dict[str, Any], title: str) -> str:
    """One self-contained HTML file: the map page with its script, style and data inline."""
    template = templates.env.get_template("map_standalone.html")
    return template.render(
        title=title,
        data=map_json_for_html(payload),
        script=(HERE / "static" / "map.js").read_text(encoding="utf-8"),
        style=(HERE / "static" / "style.css").read_text(encoding="utf-8"),
    )


def _int(value: str | None, default: int, low: int = 1, high: int = MAX_K) -> int:
    try:
        return max(low, min(high, int(value))) if value else default
    except ValueError:
        raise PapersError(f"not a number: {value!r}") from None


def hosts_for(bound: str) -> list[str]:
    """The Host names a server bound to `bound` answers to: loopback names and `bound` itself
    (127.0.0.2 is loopback too); every name when bound to all addresses."""
    if bound in ("0.0.0.0", "::", ""):
        return ["*"]
    return list(dict.fromkeys([*LOOPBACK_HOSTS, bound.strip("[]").lower()]))


def host_name(header: str) -> str:
    """The name in a Host header without its port: `[::1]:8765` is `::1`, `localhost:80`
    `localhost`. (Starlette's TrustedHostMiddleware splits on the first ':', so every request
    to an IPv6 address was refused.)"""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """Refuse (400) a request whose Host header names another host: against DNS rebinding, a
    page of another site reaching this server through a name it controls."""

    def __init__(self, app: Any, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.allowed:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                await PlainTextResponse("Invalid host header", 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error_status(e: PapersError) -> int:
    """The HTTP status of a library error: not found 404, no index yet 503, bad input 400."""
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, IndexMissing):
        return 503
    return 400 if isinstance(e, Ambiguous) or type(e) is PapersError else 500


def api_response(call: Any) -> Response:
    """`call()` as JSON, or its library error as {"error": ...} with its status."""
    try:
        return JSONResponse(call())
    except PapersError as e:
        return JSONResponse({"error": str(e)}, status_code=error_status(e))


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status)


def search_params(request: Request) -> dict[str, Any]:
    q = request.query_params
    mode = q.get("mode") or "hybrid"
    if mode not in MODES:
        raise PapersError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return {"k": _int(q.get("k"), 10), "mode": mode, "section": q.get("section") or None}


class Site:
    """The pages and the JSON API over one open `Library`: one method per route."""

    def __init__(self, library: Library):
        self.library = library
        self.maps = MapCache(library)

    # -- pages ---------------------------------------------------------------------------
    def search_page(self, request: Request) -> Response:
        question = (request.query_params.get("q") or "").strip()
        hits: list[Hit] = []
        papers: list[Paper] = []
        error = None
        params: dict[str, Any] = {"k": 10, "mode": "hybrid", "section": None}
        try:
            params = search_params(request)
            if question:
                hits = self.library.ask(question, **params)
            else:
                papers = self.library.papers()
        except PapersError as e:
            error = str(e)
        return page(
            request,
            "search.html",
            question=question,
            hits=hits,
            error=error,
            modes=MODES,
            total=len(papers),
            groups=browse(papers),
            **params,
        )

    def note_page(self, request: Request) -> Response:
        """A note file under notes/, read-only: text with line anchors, a PDF as it is."""
        place = request.path_params["place"]
        notes = self.library.notes_dir.resolve()
        path = (self.library.root / place).resolve()
        missing = NotFound(f"no note file {place}")
        if not place.startswith("notes/") or not path.is_relative_to(notes) or not path.is_file():
            return page(request, "error.html", status=404, error=str(missing))
        if path.suffix.lower() == ".pdf":
            return FileResponse(path, media_type="application/pdf")
        if path.stat().st_size > NOTE_FILE_BYTES:
            return page(request, "error.html", status=404, error=f"{place} is too large to show")
        text = path.read_bytes().decode("utf-8", errors="replace")
        return page(request, "note.html", place=place, lines=numbered_lines(text))

    def paper_page(self, request: Request) -> Response:
        pid = request.path_params["paper_id"]
        try:
            paper = self.library.show(pid)
            similar = self.library.similar(paper, k=10)
        except PapersError as e:
            return page(request, "error.html", status=error_status(e), error=str(e))
        return page(request, "paper.html", paper=paper, similar=similar)

    def map_page(self, request: Request) -> Response:
        return page(request, "map.html")

    # -- JSON ----------------------------------------------------------------------------
    async def api_ask(self, request: Request) -> Response:
        # Answered in the event loop's own thread, not handed to the thread pool a plain
        # function runs in: a warm question is ~20 ms of work, and the two thread switches
        # of that hand-off cost ~10 ms more at p50 on a busy machine (docs/benchmarks.md).
        # The loop waits meanwhile; a local server for one person loses nothing by it.
        def run() -> Any:
            params = search_params(request)
            question = request.query_params.get("q") or ""
            return output.hits_json(self.library.ask(question, **params))

        return api_response(run)

    def api_similar(self, request: Request) -> Response:
        q = request.query_params

        def run() -> Any:
            k = _int(q.get("k"), 10)
            # ?paper=A&paper=B: papers like both together
            named = q.getlist("paper")
            paper = named[0] if len(named) == 1 else (named or None)
            return output.hits_json(self.library.similar(paper, text=q.get("text"), k=k))

        return api_response(run)

    def api_paper(self, request: Request) -> Response:
        paper_id = request.path_params["paper_id"]
        return api_response(lambda: output.paper_json(self.library.show(paper_id)))

    def api_papers(self, request: Request) -> Response:
        return api_response(lambda: output.paper_list_json(self.library.papers()))

    def api_map(self, request: Request) -> Response:
        return api_response(self.maps.get)


def create_app(library: Library, allowed_hosts: list[str] | None = None) -> Starlette:
    """The web app over `library`. `allowed_hosts`: Host header names accepted (default:
    loopback names only)."""
    site = Site(library)
    routes = [
        Route("/", site.search_page),
        Route("/paper/{paper_id:path}", site.paper_page),
        Route("/map", site.map_page),
        Route("/note/{place:path}", site.note_page),
        Route("/api/ask", site.api_ask),
        Route("/api/similar", site.api_similar),
        Route("/api/papers", site.api_papers),
        Route("/api/papers/{paper_id:path}", site.api_paper),
        Route("/api/map", site.api_map),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    hosts = allowed_hosts or LOOPBACK_HOSTS
    return Starlette(
        routes=routes,
        middleware=[Middleware(HostCheck, allowed_hosts=hosts)],
    )
