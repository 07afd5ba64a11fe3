"""The catalog under hostile input and damage (issue 24): odd JSON lines, damaged files (one
line naming the file; `catalog embed` heals what it can), a full disk."""

from __future__ import annotations

from pathlib import Path

from .test_catalog import NOTES, one_error_line, run, write_jsonl


def test_catalog_add_copes_with_lone_surrogates_and_titles_that_are_not_text(
    library: Path, tmp_path: Path
) -> None:
    src = tmp_path / "works.jsonl"
    src.write_text(
        '{"title": "Lone \\ud800 surrogate paper", "abstract": "x \\udfff y"}\n'
        '{"title": ["a", "list"], "abstract": "listed"}\n'
        '{"title": "A plain paper", "abstract": "plain"}\n',
        encoding="utf-8",
    )
    result = run("catalog", "add", str(src))
    assert "Traceback" not in result.stderr
    assert "works.jsonl:2" in result.stderr and "not text" in result.stderr
    summary = run("catalog", "--json").stdout
    assert '"papers": 2' in summary.replace(" ", "").replace('"papers":2', '"papers": 2')
