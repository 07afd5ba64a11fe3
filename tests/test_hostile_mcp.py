"""`papers mcp` answers every request, even one that is not JSON-RPC (issue 24): malformed
JSON, invalid UTF-8, `"jsonrpc": "1.0"`, list params or a lone surrogate get the error the
JSON-RPC specification names (id null when the id cannot be read), and the server goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from .test_mcp import HELPER, built  # noqa: E402

__all__ = ["built"]  # the fixture, shared

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def ask(id_: object, question: str) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": id_,
            "method": "tools/call",
            "params": {"name": "ask", "arguments": {"question": question, "mode": "keyword"}},
        }
    ).encode()


def converse(library: Path, lines: list[bytes], last_id: int) -> dict[object, dict]:
    """Send `lines` after the handshake and read answers until the one to `last_id`; the
    answers by id (None: the id-less ones, listed)."""
    env = {**os.environ, "PAPERS_MODEL": "fake", "HF_HUB_OFFLINE": "1"}
    env.pop("PAPERS_LIBRARY", None)
    sent = [json.dumps(INIT).encode(), json.dumps(INITIALIZED).encode(), *lines]
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), "--library", str(library), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"".join(line + b"\n" for line in sent))
    proc.stdin.flush()
    answers: dict[object, dict] = {}
    try:
        while last_id not in answers:
            raw = proc.stdout.readline()
            assert raw, "the server stopped before answering everything"
            msg = json.loads(raw)
            key = msg.get("id")
            if key is None:
                answers.setdefault(None, {"all": []})["all"].append(msg)
            else:
                answers[key] = msg
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert b"Traceback" not in err, err.decode(errors="replace")
    return answers


def test_every_request_gets_an_answer(built: Path) -> None:
    lines = [
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"',  # cut short
        b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list", "x": "\xff\xfe"}',  # not UTF-8
        b'{"jsonrpc": "1.0", "id": 3, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": ["ask", "x"]}',
        ask(5, "dropout \ud800 denoising").replace(b"\\ud800", b"\\ud800"),
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"jsonrpc": "2.0", "id": 6, "method": 42}',
        ask(7, "denoising"),  # and the server still answers properly
    ]
    got = converse(built, lines, last_id=7)
    assert got[0]["result"]["serverInfo"]["name"] == "papers"
    nulls = [m["error"]["code"] for m in got[None]["all"]]
    # cut short, not UTF-8: parse errors; a batch and a string: invalid requests, id null
    assert sorted(nulls) == [-32700, -32700, -32600, -32600], got[None]
    assert got[3]["error"]["code"] == -32600 and "2.0" in got[3]["error"]["message"]
    assert got[4]["error"]["code"] == -32602
    assert got[5]["error"]["code"] == -32602 and "surrogate" in got[5]["error"]["message"]
    assert got[6]["error"]["code"] == -32600
    assert "error" not in got[7] and got[7]["result"]["structuredContent"]["results"]
