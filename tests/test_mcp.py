"""`papers mcp` end to end: the official SDK's client talks to a `papers mcp` subprocess over
stdio, lists the tools, calls each one, and sees a rebuilt index without a restart."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from search.api import Library  # noqa: E402

from .web_support import PAPERS, build_topic_library  # noqa: E402

HELPER = Path(__file__).with_name("mcp_helper.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield build_topic_library(tmp_path_factory.mktemp("mcp") / "library")


def server(library: Path) -> StdioServerParameters:
    env = {**os.environ, "PAPERS_MODEL": "fake", "HF_HUB_OFFLINE": "1"}
    env.pop("PAPERS_LIBRARY", None)
    return StdioServerParameters(
        command=sys.executable, args=[str(HELPER), "--library", str(library), "mcp"], env=env
    )


def session_run(library: Path, calls: Any) -> Any:
    """Start the server, run `calls(session)` and return what it returns."""

    async def main() -> Any:
        with open(os.devnull, "w") as devnull:
            async with stdio_client(server(library), errlog=devnull) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await calls(session)

    return anyio.run(main)


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def test_tools_are_listed_with_schemas_for_agents(built: Path) -> None:
    async def calls(s: ClientSession) -> Any:
        return await s.list_tools()

    tools = {t.name: t for t in session_run(built, calls).tools}
    assert set(tools) == {"ask", "similar", "show", "list_papers"}
    ask = tools["ask"]
    assert ask.input_schema["required"] == ["question"]
    props = ask.input_schema["properties"]
    assert set(props) >= {"question", "k", "mode", "section"}
    assert "plain language" in props["question"]["description"]
    assert props["mode"]["enum"] == ["hybrid", "semantic", "keyword"] or "anyOf" in props["mode"]
    assert all(t.description for t in tools.values())


def test_each_tool_returns_the_cli_json_fields(built: Path) -> None:
    async def calls(s: ClientSession) -> dict[str, Any]:
        return {
            "ask": structured(
                await s.call_tool("ask", {"question": "robot grasp torque", "k": 3, "full": True})
            ),
            "kw": structured(
                await s.call_tool(
                    "ask", {"question": "translation grammar", "mode": "keyword", "section": "Lang"}
                )
            ),
            "similar": structured(
                await s.call_tool("similar", {"title_or_id": "Circle Loss", "k": 4})
            ),
            "similar_both": structured(
                await s.call_tool(
                    "similar", {"title_or_id": ["Circle Loss", "Proxy Anchor Loss"], "k": 3}
                )
            ),
            "show": structured(await s.call_tool("show", {"title_or_id": "Circle Loss"})),
            "list": structured(await s.call_tool("list_papers", {"section": "Vision", "limit": 5})),
            "all": structured(await s.call_tool("list_papers", {})),
        }

    out = session_run(built, calls)
    # the same fields and values as `papers ask --json` through the API
    with Library(built, model="fake") as lib:
        from search.faces import output

        expected = output.hits_json(lib.ask("robot grasp torque", k=3))
    assert out["ask"]["results"] == expected
    assert [r["section"] for r in out["ask"]["results"]] == [["Robots"]] * 3
    first = out["ask"]["results"][0]
    assert first["where"].startswith("notes/topics.md:")
    assert {"rank", "score", "id", "title", "note", "abstract", "sources", "explain"} <= set(first)
    assert out["kw"]["results"] and all(r["section"] == ["Language"] for r in out["kw"]["results"])
    assert all(r["title"] != "Circle Loss" for r in out["similar"]["results"])
    assert len(out["similar"]["results"]) == 4
    both = [r["title"] for r in out["similar_both"]["results"]]
    assert len(both) == 3 and not any(t.startswith(("Circle Loss", "Proxy Anchor")) for t in both)
    assert out["show"]["paper"]["title"].startswith("Circle Loss")
    assert "rank" not in out["show"]["paper"]
    assert out["list"]["total"] == 25 and len(out["list"]["papers"]) == 5
    assert out["all"]["total"] == PAPERS


def test_a_mistake_is_a_tool_error_with_one_line(built: Path) -> None:
    async def calls(s: ClientSession) -> Any:
        return (
            await s.call_tool("show", {"title_or_id": "no such paper at all zzz"}),
            await s.call_tool("ask", {"question": "   "}),
        )

    unknown, empty = session_run(built, calls)
    assert unknown.is_error and "no paper titled" in unknown.content[0].text
    assert empty.is_error and "empty" in empty.content[0].text


def test_a_rebuilt_index_is_answered_without_restart(built: Path, tmp_path: Path) -> None:
    lib = tmp_path / "copy"
    shutil.copytree(built, lib)
    notes = lib / "notes" / "later.md"

    async def calls(s: ClientSession) -> tuple[Any, Any]:
        before = structured(await s.call_tool("list_papers", {"limit": 1}))["total"]
        notes.write_text("# Later\n\n- Zebra stripes as camouflage\n  > quokka\n", "utf-8")
        # a rebuild by another process (here: in the test) publishes a new generation
        Library(lib, model="fake").rebuild()
        hits = structured(await s.call_tool("ask", {"question": "quokka", "mode": "keyword"}))
        return before, hits

    before, hits = session_run(lib, calls)
    assert before == PAPERS
    assert hits["results"][0]["title"] == "Zebra stripes as camouflage"


def test_mcp_help_shows_the_client_config() -> None:
    from click.testing import CliRunner

    from search.faces.cli import cli

    result = CliRunner().invoke(cli, ["mcp", "--help"])
    assert result.exit_code == 0
    snippet = result.stdout.split("configuration (see README):")[1].split("Examples")[0]
    assert json.loads(" ".join(snippet.split()))["mcpServers"]["papers"]["args"][-1] == "mcp"
