"""`papers mcp`: the library as a Model Context Protocol server (stdio) for coding agents.

A fresh `papers ask` process per agent call pays for opening the index and the encoder every
time; this server keeps one `search.api.Library` open, so the encoder and index stay loaded and
a call costs only the search. The Library notices a newly published index generation on the
next call, so a rebuild (here with --watch, or in another terminal) needs no restart.

Tools return the same fields as the CLI's `--json` (built by `search.faces.output`), under a key
(`results`, `paper`, `papers`) because MCP structured output is an object. Mistakes (unknown
title, empty question, no index) come back as tool errors with the CLI's one-line message.

Built on the official `mcp` SDK (2.x: `MCPServer`, the former FastMCP), imported here only:
nothing else in papers needs it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any, Literal

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from search.api import Library, PapersError
from search.faces import output
from search.version import __version__

INSTRUCTIONS = """\
Search the user's own notes on research papers (markdown notes, reading lists, imported
abstracts). Use `ask` for a question in plain language, `similar` to find papers close to one
the user names (or to a pasted text), `show` to read everything the notes hold on one paper,
and `list_papers` to see what is indexed. Every result carries `where` (notes/file.md:line):
quote it so the user can jump to their note."""

Mode = Literal["hybrid", "semantic", "keyword"]
K_MAX = 100
# The range is advertised in the schema but checked in the tool: pydantic's own error is a
# multi-line dump an agent (or a person reading its log) has to decode.
K = Annotated[
    int,
    Field(
        description=f"How many papers to return (1-{K_MAX}).",
        json_schema_extra={"minimum": 1, "maximum": K_MAX},
    ),
]
Full = Annotated[
    bool,
    Field(
        description="Whole notes and abstracts and how each was found (default: snippets of "
        f"{output.SNIPPET_CHARS} characters, no empty fields; `show` gives one paper in full)."
    ),
]


def _check_k(k: int) -> None:
    if not 1 <= k <= K_MAX:
        raise ToolError(f"k must be between 1 and {K_MAX}, got {k}")


def _results(hits: list[Any], full: bool) -> dict[str, Any]:
    shape = output.hit_json if full else output.hit_brief_json
    return {"results": [shape(h) for h in hits]}


def build_server(library: Library) -> MCPServer:
    """An MCP server whose tools answer from `library` (kept open for the server's life)."""
    server: MCPServer = MCPServer(
        name="papers", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )

    def answer(call: Any) -> Any:
        try:
            return call()
        except PapersError as e:
            raise ToolError(str(e)) from None

    @server.tool()
    def ask(
        question: Annotated[
            str,
            Field(
                description="A question or topic in plain language, e.g. 'denoising "
                "with only one noisy image'."
            ),
        ],
        k: K = 10,
        mode: Annotated[
            Mode,
            Field(
                description="hybrid (default: meaning and keywords fused), semantic "
                "(meaning only) or keyword (exact words, BM25)."
            ),
        ] = "hybrid",
        section: Annotated[
            str | None,
            Field(
                description="Only papers under a notes heading containing this text "
                "(case-insensitive), e.g. 'CVPR 2020'."
            ),
        ] = None,
        full: Full = False,
    ) -> dict[str, Any]:
        """Find the papers in the user's notes that best answer a question, best first.

        Each result has rank, relevance (0-1), score, id, title, section (headings it stands
        under), note (what the user wrote) and abstract as snippets, arxiv, doi, url, sources
        and where (notes/file.md:line); empty fields are left out. With full=true: whole
        notes and abstracts, and explain (which retriever found it, the matched words)."""
        _check_k(k)
        hits = answer(lambda: library.ask(question, k=k, section=section, mode=mode))
        return _results(hits, full)

    @server.tool()
    def similar(
        title_or_id: Annotated[
            str | list[str] | None,
            Field(
                description="A paper in the notes: its title (loosely matched, the start "
                "is enough), its id, arXiv id or DOI; or a list of them for papers like all "
                "of them together. Give this or `text`."
            ),
        ] = None,
        text: Annotated[
            str | None,
            Field(
                description="A pasted abstract or paragraph to find papers close to. Give "
                "this or `title_or_id`."
            ),
        ] = None,
        k: K = 10,
        full: Full = False,
    ) -> dict[str, Any]:
        """Find papers in the notes similar to one paper (never itself), to several together,
        or to a text.

        Same result fields as `ask` (snippets unless full=true). An unknown or ambiguous title
        is an error listing the closest titles: retry with one of them."""
        _check_k(k)
        hits = answer(lambda: library.similar(title_or_id, text=text, k=k))
        return _results(hits, full)

    @server.tool()
    def show(
        title_or_id: Annotated[
            str,
            Field(description="A paper's title (loosely matched), id, arXiv id or DOI."),
        ],
    ) -> dict[str, Any]:
        """Everything the notes hold on one paper: title, section, authors, year, venue, tags,
        ids, abstract, every note written on it, and every place it is mentioned."""
        paper = answer(lambda: library.show(title_or_id))
        return {"paper": output.paper_json(paper)}

    @server.tool()
    def list_papers(
        section: Annotated[
            str | None,
            Field(description="Only papers under a heading containing this (case-insensitive)."),
        ] = None,
        limit: Annotated[
            int, Field(ge=1, le=10000, description="At most this many papers (default 100).")
        ] = 100,
    ) -> dict[str, Any]:
        """The papers indexed, in the order of their first mention in the notes, with the total
        count (before `limit`)."""
        papers = answer(library.papers)
        if section:
            wanted = section.casefold()
            papers = [p for p in papers if any(wanted in s.casefold() for s in p.section)]
        return {"total": len(papers), "papers": output.paper_list_json(papers[:limit])}

    return server


def run_stdio(library: Library) -> None:
    """Serve over stdin/stdout until the client closes the connection.

    The SDK's stdio transport, with its input checked first: the SDK drops a line it cannot
    read without answering, and a client would wait forever on that id. Such a line is
    answered here with the JSON-RPC error the specification names (`check_message`)."""
    from mcp.server.stdio import stdio_server

    server = build_server(library)
    lowlevel = server._lowlevel_server  # the SDK's own run loop, as MCPServer.run_stdio_async
    stdin = _CheckedLines(sys.stdin.buffer)

    async def serve() -> None:
        async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # type: ignore[arg-type]
            stdin.answers = write_stream
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    anyio.run(serve)


class _CheckedLines:
    """stdin as lines of text for the SDK's reader; a line that is no valid JSON-RPC message
    is answered with its error (through the SDK's own writer) and not passed on."""

    def __init__(self, raw: Any):
        self.raw = raw
        self.answers: Any = None  # the SDK's write stream, set once the transport is up

    def __aiter__(self) -> Any:
        return self._lines()

    async def _lines(self) -> Any:
        from mcp.shared.message import SessionMessage

        while True:
            line = await anyio.to_thread.run_sync(self.raw.readline)
            if not line:
                return
            if not line.strip():
                continue
            error = check_message(line)
            if error is None:
                yield line.decode("utf-8")
            elif self.answers is not None:
                await self.answers.send(SessionMessage(error))


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_message(line: bytes) -> Any:
    """None when `line` is a JSON-RPC 2.0 message the SDK can read; else the error response
    for it: parse error (not JSON, not UTF-8), invalid request (not a 2.0 request object),
    invalid params (params not an object, a lone surrogate in a string). The id is the
    request's when it can be read, else null."""

    def error(code: int, message: str, id_: Any = None) -> Any:
        return types.JSONRPCError(
            jsonrpc="2.0", id=id_, error=types.ErrorData(code=code, message=message)
        )

    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return error(types.PARSE_ERROR, "Parse error: the message is not valid UTF-8")
    except (ValueError, RecursionError):
        return error(types.PARSE_ERROR, "Parse error: the message is not valid JSON")
    if not isinstance(obj, dict):
        kind = "a batch (a list)" if isinstance(obj, list) else type(obj).__name__
        return error(types.INVALID_REQUEST, f"Invalid Request: expected an object, got {kind}")
    raw_id = obj.get("id")
    id_ = raw_id if isinstance(raw_id, str) or type(raw_id) is int else None
    if obj.get("jsonrpc") != "2.0":
        return error(types.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', id_)
    if "method" in obj and not isinstance(obj["method"], str):
        return error(types.INVALID_REQUEST, 'Invalid Request: "method" must be a string', id_)
    if "params" in obj and not isinstance(obj["params"], dict):
        return error(types.INVALID_PARAMS, 'Invalid params: "params" must be an object', id_)
    if _has_lone_surrogate(obj):
        return error(
            types.INVALID_PARAMS,
            "Invalid params: a string holds a lone surrogate (\\ud800-\\udfff), which is not text",
            id_,
        )
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError as e:
        first = str(e).splitlines()[0]
        return error(types.INVALID_REQUEST, f"Invalid Request: {first}", id_)
    return None


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False
