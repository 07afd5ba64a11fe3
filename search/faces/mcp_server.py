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

from typing import Annotated, Any, Literal

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
K = Annotated[int, Field(ge=1, le=100, description="How many papers to return (1-100).")]


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
    ) -> dict[str, Any]:
        """Find the papers in the user's notes that best answer a question, best first.

        Each result has rank, score, id, title, section (headings it stands under), note (what
        the user wrote), abstract, arxiv, doi, url, sources and where (notes/file.md:line), and
        explain (which retriever found it and the matched words)."""
        hits = answer(lambda: library.ask(question, k=k, section=section, mode=mode))
        return {"results": output.hits_json(hits)}

    @server.tool()
    def similar(
        title_or_id: Annotated[
            str | None,
            Field(
                description="A paper in the notes: its title (loosely matched, the start "
                "is enough), its id, arXiv id or DOI. Give this or `text`."
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
    ) -> dict[str, Any]:
        """Find papers in the notes similar to one paper (never itself) or to a text.

        Same result fields as `ask`. An unknown or ambiguous title is an error listing the
        closest titles: retry with one of them."""
        hits = answer(lambda: library.similar(title_or_id, text=text, k=k))
        return {"results": output.hits_json(hits)}

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
    """Serve over stdin/stdout until the client closes the connection."""
    build_server(library).run("stdio")
