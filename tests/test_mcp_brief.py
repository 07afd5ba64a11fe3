"""MCP `ask`/`similar` answer briefly by default (snippets, no empty fields), in full on
request; a `k` out of range is one clear line, not a validation dump."""

from __future__ import annotations

import json
from typing import Any

from mcp import ClientSession

from tests.test_mcp import built, session_run, structured  # noqa: F401 (fixture)

SNIPPET = 300


def test_ask_is_brief_by_default_and_full_on_request(built: Any) -> None:  # noqa: F811
    async def calls(s: ClientSession) -> Any:
        question = {"question": "robot grasp torque", "k": 10}
        return (
            structured(await s.call_tool("ask", question)),
            structured(await s.call_tool("ask", {**question, "full": True})),
            structured(await s.call_tool("similar", {"title_or_id": "Circle Loss", "k": 3})),
        )

    brief, full, similar = session_run(built, calls)
    assert [r["id"] for r in brief["results"]] == [r["id"] for r in full["results"]]
    for r in brief["results"] + similar["results"]:
        assert None not in r.values() and "" not in r.values() and [] not in r.values()
        assert len(r.get("note", "")) <= SNIPPET and len(r.get("abstract", "")) <= SNIPPET
        assert {"rank", "relevance", "id", "title", "where"} <= set(r)
    assert len(json.dumps(brief)) < len(json.dumps(full))
    assert "explain" in full["results"][0] and "explain" not in brief["results"][0]


def test_k_out_of_range_is_one_clear_line(built: Any) -> None:  # noqa: F811
    async def calls(s: ClientSession) -> Any:
        return (
            await s.call_tool("ask", {"question": "robot", "k": 500}),
            await s.call_tool("similar", {"title_or_id": "Circle Loss", "k": 0}),
        )

    for result in session_run(built, calls):
        assert result.is_error
        text = result.content[0].text
        assert "k must be between 1 and 100" in text and "\n" not in text.strip(), text
        assert "pydantic" not in text and "validation error" not in text
