"""The long-running commands and the map: `papers mcp`, `papers serve`, `papers watch`,
`papers map`.

Each is a thin face over `search.api.Library` (kept open for the life of the process) and the
modules that do the work: faces/mcp_server.py, faces/web/app.py, faces/watch.py and
search/storage/map.py. The servers' own packages (mcp, starlette, uvicorn, watchfiles) are imported
inside the commands: `papers --help` and every other command never load them.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
import sys
from pathlib import Path

import click

from search.errors import PapersError
from search.faces.cli_common import CONTEXT, emit_json, err, library_of, paths_of
from search.faces.watch import WatchEvent, describe, rebuild_once, watch, watch_in_thread
from search.library import shorten
from search.storage import map as library_map

DEFAULT_PORT = 8765


def _need(module: str) -> None:
    """Stop with one line when an optional package is missing."""
    if importlib.util.find_spec(module) is None:
        raise click.ClickException(
            f"this command needs the `{module}` package: pip install 'papers[web]'"
        )


def _report(event: WatchEvent) -> None:
    err(describe(event))


@click.command(context_settings=CONTEXT)
@click.option("--watch", is_flag=True, help="Re-index when notes/ changes (no restart needed).")
def mcp_command(watch: bool) -> None:
    """Serve the library to AI agents over MCP (Model Context Protocol), on stdio.

    Tools: ask, similar, show, list_papers; each returns the fields of the matching
    `--json` output. The encoder and index stay loaded between calls, and a rebuilt index is
    picked up on the next call. Add it to an MCP client's configuration (see README):

    \b
      {"mcpServers": {"papers": {"command": "papers",
          "args": ["--library", "/path/to/library", "mcp"]}}}

    \b
    Examples:
      papers --library ~/papers mcp
      papers mcp --watch
    """
    _need("mcp")
    from search.faces.mcp_server import run_stdio

    lib = library_of()
    stop = None
    if watch:
        stop = watch_in_thread(lib, _report)
    try:
        run_stdio(lib)
    finally:
        if stop is not None:
            stop.set()
        lib.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int, shown: str) -> socket.socket:
    """A socket listening on host:port, or one line saying why not (a busy port, most often)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        why = os.strerror(e.errno) if e.errno else str(e)  # create_server adds the address
        raise PapersError(f"cannot listen on {shown}:{port}: {why}") from None


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Needed to listen on an address other than loopback: anyone who can reach it can "
    "read your notes.",
)
@click.option("--watch", is_flag=True, help="Re-index when notes/ changes (no restart needed).")
def serve_command(host: str, port: int, allow_remote: bool, watch: bool) -> None:
    """A local web page: search, each paper with its notes and similar papers, and a map.

    Read-only (nothing on the page changes notes or index); every asset is served locally,
    so it works offline. /api/ask, /api/similar, /api/papers, /api/papers/ID and /api/map
    return the same JSON as the CLI's --json.

    \b
    Examples:
      papers serve                     # http://127.0.0.1:8765
      papers serve --port 9000 --watch
    """
    _need("starlette")
    _need("uvicorn")
    if not _is_loopback(host) and not allow_remote:
        raise click.BadParameter(
            f"{host} is not a loopback address; add --allow-remote to listen there anyway",
            param_hint="--host",
        )
    import uvicorn

    from search.faces.web.app import create_app, hosts_for

    lib = library_of()
    if not _is_loopback(host):
        err(
            f"warning: listening on {host}: anyone who can reach this address can read your "
            "notes (there is no login)"
        )
    shown = f"[{host}]" if ":" in host else host
    sock = _listen(host, port, shown)  # before saying "serving": a busy port is an error
    stop = None
    if watch:
        stop = watch_in_thread(lib, _report)
    err(f"serving {paths_of().root} on http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)")
    try:
        config = uvicorn.Config(create_app(lib, hosts_for(host)), log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if stop is not None:
            stop.set()
        lib.close()


@click.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="Rebuild once and stop (for scripts and tests).")
def watch_command(once: bool) -> None:
    """Keep the index up to date: rebuild whenever a file under notes/ changes.

    Changes are debounced (one rebuild for a burst of saves). A failed rebuild is reported
    and the previous index keeps answering; the next change tries again. Ctrl-C stops.

    \b
    Examples:
      papers watch
      papers serve --watch      # the same, inside the web server
    """
    _need("watchfiles")
    lib = library_of()
    if once:
        event = rebuild_once(lib, ["(start)"])
        err(describe(event))
        if event.error:
            sys.exit(1)
        return
    err(f"watching {lib.notes_dir} (Ctrl-C to stop)")
    try:
        watch(lib, _report)
    except KeyboardInterrupt:
        pass


@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print the clusters as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the map as one self-contained HTML file.",
)
@click.option(
    "--top",
    default=3,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Papers shown per cluster.",
)
def map_command(as_json: bool, html_file: Path | None, top: int) -> None:
    """The map of the library: clusters of papers, each labelled by its distinctive words.

    The map (a 2-D t-SNE layout, k-means clusters, c-TF-IDF labels) is made by
    `papers rebuild` and stored with the index; `papers serve` draws it at /map.

    \b
    Examples:
      papers map
      papers map --json | jq '.clusters[].label'
      papers map --html library-map.html
    """
    lib = library_of()
    m = library_map.load(lib.index_dir, err)
    papers = {p.id: p for p in lib.papers()}
    if html_file is not None:
        _need("jinja2")
        from search.faces.web.app import map_payload, standalone_map_html

        html = standalone_map_html(map_payload(m, list(papers.values())), f"map of {lib.root.name}")
        try:
            html_file.write_text(html, encoding="utf-8")
        except OSError as e:
            raise PapersError(f"cannot write {html_file}: {e.strerror or e}") from None
        err(f"wrote {html_file} ({len(m.points)} papers, {len(m.clusters)} clusters)")
        return
    by_id = {p.id: p for p in m.points}
    if as_json:
        emit_json(
            {
                "method": m.method,
                "papers": len(m.points),
                "clusters": [
                    {
                        "id": c.id,
                        "label": c.label,
                        "terms": c.terms,
                        "size": c.size,
                        "x": c.x,
                        "y": c.y,
                        "top": [
                            {
                                "id": pid,
                                "title": by_id[pid].title,
                                "where": papers[pid].where if pid in papers else "",
                            }
                            for pid in c.top[:top]
                        ],
                    }
                    for c in m.clusters
                ],
            }
        )
        return
    click.echo(f"{len(m.points)} papers in {len(m.clusters)} clusters ({m.method})")
    for c in m.clusters:
        click.echo(f"\n{c.size:>5}  {c.label}")
        for pid in c.top[:top]:
            where = papers[pid].where if pid in papers else ""
            click.echo(f"       {shorten(by_id[pid].title, 70):<70}  {where}")
