"""Without a terminal (a log file, a CI job), a long rebuild still says how far it is: plain
progress lines on stderr, not a live bar nobody sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.faces.cli_common import _progress_lines
from tests.test_cli import rebuild_fake


def test_rebuild_without_a_terminal_prints_progress_lines(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("search.faces.cli_common.PROGRESS_QUIET_SECONDS", 0.0)
    lines = [f"- Paper number {i} about topic {i % 7}\n  > note {i}" for i in range(200)]
    (library / "notes" / "many.md").write_text("# Many\n\n" + "\n".join(lines), encoding="utf-8")
    err = rebuild_fake().stderr
    progress = [line for line in err.splitlines() if line.startswith("embedding:")]
    assert progress, err
    assert progress[-1].startswith("embedding: 200/200 chunks")


def test_a_quick_rebuild_prints_no_progress_lines(library: Path) -> None:
    lines = [f"- Paper number {i} about topic {i % 7}" for i in range(100)]
    (library / "notes" / "many.md").write_text("# Many\n\n" + "\n".join(lines), encoding="utf-8")
    assert "embedding:" not in rebuild_fake().stderr


def test_progress_lines_come_once_per_tenth(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("search.faces.cli_common.PROGRESS_QUIET_SECONDS", 0.0)
    advance = _progress_lines(200)
    for _ in range(200):
        advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0] == "embedding: 20/200 chunks (10%)", lines
