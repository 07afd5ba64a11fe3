"""D1: lone surrogates (a JSON escape such as \\ud800 with no partner, or undecodable bytes in
a command-line argument) never end in a traceback: they become U+FFFD with a reported problem,
and everything else is indexed, stored and printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from search.faces.cli import cli

from .conftest import FakeEncoder
from .test_cli import FAKE, rebuild_fake, run

# Written as JSON escapes, as a hostile or broken exporter would.
LONE_JSONL = (
    '{"title": "Lone \\ud800 x", "abstract": "about graphs"}\n'
    '{"title": "Good paper", "abstract": "fine \\udc80 text", "note": "ok"}\n'
    '{"title": "Emoji pair \\ud83d\\ude00 stays", "abstract": "a valid pair"}\n'
)
LONE_MD = '---\ntitle: "Front \\ud800 matter"\n---\nA body about denoising.\n'


@pytest.fixture
def lone(library: Path) -> Path:
    (library / "notes" / "a.jsonl").write_text(LONE_JSONL, encoding="utf-8")
    (library / "notes" / "b.md").write_text(LONE_MD, encoding="utf-8")
    return library


def test_rebuild_replaces_lone_surrogates_and_reports_them(lone: Path) -> None:
    result = rebuild_fake("--json")
    report = json.loads(result.stdout)
    assert report["papers"] == 4
    problems = "\n".join(report["problems"])
    assert "a.jsonl:1" in problems and "a.jsonl:2" in problems
    assert "surrogate" in problems
    assert "a.jsonl:3" not in problems  # a valid pair is not a problem
    titles = {p["title"] for p in json.loads(run("list", "--json").stdout)}
    assert titles == {
        "Lone \ufffd x",
        "Good paper",
        "Emoji pair \U0001f600 stays",
        "Front \ufffd matter",
    }
    # Every way out: table, JSON, a lookup.
    assert "Lone \ufffd x" in run("list").stdout
    hits = json.loads(run("ask", "fine text", *FAKE, "--json").stdout)
    assert any(h["abstract"] == "fine \ufffd text" for h in hits)
    assert "Lone" in run("show", "Lone x").stdout


def test_import_replaces_lone_surrogates_and_reports_them(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "in" / "odd.jsonl"
    src.parent.mkdir()
    src.write_text(LONE_JSONL, encoding="utf-8")
    result = run("import", str(src))
    assert "surrogate" in result.stderr
    out = (library / "notes" / "imported" / "odd.jsonl").read_text(encoding="utf-8")
    assert "Lone \ufffd x" in out and "\U0001f600" in out
    assert json.loads(run("import", str(src), "--json").stdout)["files"][0]["written_records"] == 3


@pytest.mark.parametrize("command", [["ask"], ["similar"], ["show"], ["similar", "--text"]])
def test_undecodable_argument_is_no_traceback(
    lone: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuild_fake()
    # A real tokenizer refuses text that is not valid Unicode (TypeError from tokenizers).
    encode = FakeEncoder.encode

    def strict_encode(self: FakeEncoder, texts: list[str], **kw: Any) -> Any:
        for t in texts:
            t.encode("utf-8")
        return encode(self, texts, **kw)

    monkeypatch.setattr(FakeEncoder, "encode", strict_encode)
    # Python hands undecodable argv bytes (b"\xff") to the program as lone surrogates.
    result = CliRunner().invoke(cli, [*command, "Lone \udcff zzz"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 1)
    assert "\udcff" not in result.stderr and "\\udcff" not in result.stderr


def test_import_of_a_json_array_replaces_lone_surrogates(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "list.json"
    src.write_text('[{"title": "Array \\ud800 paper"}, {"title": "Fine"}]', encoding="utf-8")
    result = run("import", str(src))
    assert "item 1: lone surrogate" in result.stderr
    out = (library / "notes" / "imported" / "list.jsonl").read_text(encoding="utf-8")
    assert "Array \ufffd paper" in out
