"""Terminal tables at 80 columns: titles come first; paths and notes wrap or are cut."""

from __future__ import annotations

import pytest

from search.api import Hit, IndexInfo, Paper, Source
from search.catalog.catalog import CatalogHit
from search.catalog.recommend import Positive, Recommendation
from search.catalog.sources import CatalogPaper
from search.faces import output

LONG_TITLE = (
    "Learning Deep Representations of Fine-Grained Visual Descriptions for Zero-Shot Retrieval"
)
DEEP_FILE = "notes/" + "/".join(["a-rather-long-folder-name"] * 4) + "/reading-list-2024.md"


def paper(title: str, file: str = DEEP_FILE, line: int = 1234) -> Paper:
    return Paper(
        id="p",
        title=title,
        section=("Metric learning and retrieval",),
        authors=(),
        year=None,
        venue=None,
        tags=(),
        arxiv=None,
        doi=None,
        url=None,
        abstract="",
        notes=("A note that goes on and on " * 10,),
        sources=(Source(file, line),),
    )


@pytest.fixture(autouse=True)
def columns_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def test_hits_table_keeps_titles_and_fits_80_columns() -> None:
    hits = [Hit(rank=i, score=0.5, paper=paper(LONG_TITLE)) for i in (1, 2)]
    text = output.hits_table(hits)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    title_shown = next(line for line in lines if line.lstrip().startswith("1 "))
    # at least 50 characters of the title, not 15
    assert LONG_TITLE[:50] in title_shown
    # the path still ends with the file name and line, so it can be opened
    assert any(line.rstrip().endswith("reading-list-2024.md:1234") for line in lines)


def test_hits_table_short_paths_stay_on_the_row() -> None:
    hits = [Hit(rank=1, score=0.5, paper=paper("Circle Loss", file="notes/a.md", line=3))]
    rows = output.hits_table(hits).splitlines()
    assert "Circle Loss" in rows[1] and rows[1].rstrip().endswith("notes/a.md:3")


def test_list_table_keeps_titles_and_says_one_paper() -> None:
    info = IndexInfo(generation="gen-1", model="m", built_at="now", papers=1, chunks=1)
    text = output.papers_by_file([paper(LONG_TITLE)], info)
    lines = text.splitlines()
    assert "(1 paper)" in text and "1 papers" not in text
    assert lines[0].startswith("1 paper in 1 file ")
    entry = next(line for line in lines if "1234" in line)
    assert LONG_TITLE[:50] in entry and len(entry) <= 80


def _catalog_paper(title: str) -> CatalogPaper:
    return CatalogPaper(1, "arxiv:2101.00001", title, "x " * 200, date="2021-01-01")


@pytest.mark.parametrize("columns", [80, 160])
def test_catalog_tables_give_titles_the_terminal_width(
    monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    hits = [CatalogHit(rank=1, score=0.42, paper=_catalog_paper(LONG_TITLE))]
    closest = Positive(id="p", title=LONG_TITLE, where="notes/a.md:3", text="")
    recs = [Recommendation(1, 2.0, _catalog_paper(LONG_TITLE), closest, 0.61)]
    for table in (output.catalog_hits_table(hits), output.recommendations_table(recs)):
        lines = table.splitlines()
        assert all(len(line) <= columns for line in lines), table
        title = lines[0][11:].split("  ")[0]
        if columns == 160:
            assert title == LONG_TITLE  # room for it all (it was cut at 90 characters)
        else:
            assert len(title) >= output.MIN_TITLE and "2021-01-01" in table
