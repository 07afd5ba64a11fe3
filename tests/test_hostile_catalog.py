"""The catalog under hostile input and damage (issue 24): odd JSON lines, damaged files (one
line naming the file; `catalog embed` heals what it can), a full disk."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from search.catalog.catalog import Catalog

from .test_catalog import notes_and_catalog, one_error_line, run, write_jsonl

__all__ = ["notes_and_catalog"]  # the fixture, shared


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


def error_line(result: click.testing.Result) -> str:
    """The one error line, after progress lines such as "reading big.jsonl…"."""
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and not any(x.startswith("Error") for x in lines[:-1])
    return lines[-1]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _merged(library: Path) -> Path:
    [folder] = (library / "catalog" / "embeddings").glob("*/merged")
    return folder


def _recommend_ok() -> list[str]:
    return [r["title"] for r in json.loads(run("recommend", "--json", "-k", "10").stdout)]


def test_a_truncated_shard_is_dropped_reembedded_and_merged(notes_and_catalog: Path) -> None:
    before = _recommend_ok()
    [shard] = (notes_and_catalog / "catalog" / "embeddings").glob("*/shards/shard-*.npz")
    _truncate(shard)
    result = run("catalog", "embed")
    assert "Traceback" not in result.stderr
    assert shard.name in result.stderr and "damaged" in result.stderr
    assert "6 of 6 catalog papers have vectors" in result.stdout
    assert _recommend_ok() == before
    assert "embedded 0 papers" in run("catalog", "embed").stdout


@pytest.mark.parametrize("name", ["keywords.npz", "idf.npy", "vectors.npy", "cids.npy"])
def test_damaged_merged_files_are_one_line_and_embed_heals(
    notes_and_catalog: Path, name: str
) -> None:
    before = _recommend_ok()
    _truncate(_merged(notes_and_catalog) / name)
    line = one_error_line(run("recommend", ok=False))
    assert name in line and "damaged" in line and "papers catalog embed" in line
    result = run("catalog", "embed")
    assert "Traceback" not in result.stderr
    assert _recommend_ok() == before


@pytest.mark.parametrize("kept", [0.001, 0.3, 0.8])
def test_a_damaged_catalog_database_is_one_line_naming_it(
    notes_and_catalog: Path, tmp_path: Path, kept: float
) -> None:
    rows = [{"title": f"Paper number {i}", "abstract": "words " * 50} for i in range(2000)]
    run("catalog", "add", str(write_jsonl(tmp_path / "more.jsonl", rows)))
    run("catalog", "embed")
    db = notes_and_catalog / "catalog" / "catalog.sqlite"
    data = db.read_bytes()
    # Pages past `kept` are garbage: SQLite opens the file and fails when it reads them.
    cut = max(100, int(len(data) * kept) // 4096 * 4096)
    db.write_bytes(data[:cut] + b"\x13" * (len(data) - cut))
    for args in (
        ["catalog"],
        ["catalog", "embed"],
        ["recommend"],
        ["ask", "--catalog", "paper"],
        ["catalog", "add", str(tmp_path / "more.jsonl")],
    ):
        line = error_line(run(*args, ok=False))
        assert "catalog.sqlite" in line and "damaged" in line, args


def _tiny_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SQLITE_FULL: the catalog database may not grow past its size when opened."""
    real_open = Catalog.open.__func__  # type: ignore[attr-defined]

    def tiny(cls: type[Catalog], folder: Path, create: bool = False) -> Catalog:
        cat = real_open(cls, folder, create)
        pages = cat.db.execute("PRAGMA page_count").fetchone()[0]
        cat.db.execute(f"PRAGMA max_page_count = {pages + 1}")
        return cat

    monkeypatch.setattr(Catalog, "open", classmethod(tiny))


@pytest.mark.parametrize("exists", [False, True])
def test_catalog_add_on_a_full_disk_says_the_disk_is_full(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    small = write_jsonl(tmp_path / "small.jsonl", [{"title": "First paper", "abstract": "x"}])
    if exists:
        run("catalog", "add", str(small))
    rows = [{"title": f"Paper {i}", "abstract": "words " * 200} for i in range(300)]
    big = write_jsonl(tmp_path / "big.jsonl", rows)
    _tiny_catalog(monkeypatch)
    line = error_line(run("catalog", "add", str(big), ok=False))
    assert line.startswith("Error: catalog add failed, the disk is full") and "free" in line
    monkeypatch.undo()
    monkeypatch.setenv("PAPERS_LIBRARY", str(library))
    if exists:
        assert '"papers": 1' in run("catalog", "--json").stdout
    run("catalog", "add", str(big))
