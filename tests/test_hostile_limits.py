"""Resource limits: a small or hostile input must not cost hours, gigabytes or a screenful per
bad record (D5, D6, D16, long lists)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from search import importers

from .test_cli import rebuild_fake, run

GOOD = '{"title": "A good paper", "abstract": "about graphs"}\n'


def stderr_lines_about(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line]


# -- D6: data files get the limits notes get; problems are summarised ----------------------------


def test_binary_jsonl_and_bib_are_one_problem_each(library: Path) -> None:
    notes = library / "notes"
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(300_000)) + b"\x00"
    (notes / "huge.jsonl").write_bytes(noise)
    (notes / "refs.bib").write_bytes(b"@article{a, title={T}}\n\x00\x01\x02" + noise)
    (notes / "ok.jsonl").write_text(GOOD, encoding="utf-8")
    result = rebuild_fake("--json")
    problems = json.loads(result.stdout)["problems"]
    assert [p for p in problems if p.startswith("huge.jsonl")] == [
        "huge.jsonl: binary file (NUL byte), not a text note"
    ]
    assert [p for p in problems if p.startswith("refs.bib")] == [
        "refs.bib: binary file (NUL byte), not a text note"
    ]
    assert json.loads(run("list", "--json").stdout)[0]["title"] == "A good paper"


def test_jsonl_that_is_not_utf8_is_one_problem(library: Path) -> None:
    notes = library / "notes"
    rng = random.Random(8)
    (notes / "noise.jsonl").write_bytes(bytes(rng.randrange(1, 256) for _ in range(100_000)))
    (notes / "ok.jsonl").write_text(GOOD, encoding="utf-8")
    problems = json.loads(rebuild_fake("--json").stdout)["problems"]
    mine = [p for p in problems if p.startswith("noise.jsonl")]
    assert len(mine) == 1 and "not valid UTF-8" in mine[0]


def test_data_file_over_the_size_cap_is_skipped(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importers, "MAX_DATA_BYTES", 10_000)
    notes = library / "notes"
    (notes / "big.jsonl").write_text(GOOD * 1000, encoding="utf-8")
    (notes / "big.bib").write_text("@misc{k, title={T}}\n" * 1000, encoding="utf-8")
    (notes / "ok.md").write_text("* A note paper\n", encoding="utf-8")
    problems = json.loads(rebuild_fake("--json").stdout)["problems"]
    for name in ("big.jsonl", "big.bib"):
        [p] = [p for p in problems if p.startswith(name)]
        assert "over the" in p and "limit" in p


def test_many_bad_records_are_summarised_in_rebuild_and_import(
    library: Path, tmp_path: Path
) -> None:
    bad = "".join(f"not json {i}\n" for i in range(5000)) + GOOD
    (library / "notes" / "bad.jsonl").write_text(bad, encoding="utf-8")
    result = rebuild_fake("--json")
    problems = [p for p in json.loads(result.stdout)["problems"] if p.startswith("bad.jsonl")]
    assert 2 <= len(problems) <= 10
    assert any("4995 more" in p or "more problems" in p for p in problems), problems
    assert len(stderr_lines_about(result.stderr, "bad.jsonl")) <= 10
    # A rebuild with nothing changed does not print them again, one per line.
    again = rebuild_fake()
    assert len(stderr_lines_about(again.stderr, "bad.jsonl")) <= 1
    assert "up to date" in again.stderr

    src = tmp_path / "in" / "bad.jsonl"
    src.parent.mkdir()
    src.write_text(bad, encoding="utf-8")
    imported = run("import", str(src), "--json")
    assert len(imported.stderr.splitlines()) <= 12
    assert len(json.loads(imported.stdout)["files"][0]["problems"]) <= 10


def test_import_refuses_binary_input(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"title": "x"}\n\x00\x00garbage')
    result = run("import", str(src), ok=False)
    assert "binary" in result.stderr
    assert not (library / "notes" / "imported").exists()
