"""Zotero as a researcher keeps it: a standalone PDF they titled keeps that title, and a
preprint merged with its published version keeps the journal's DOI."""

from __future__ import annotations

from pathlib import Path

from search.library import merge
from search.readers import zotero
from search.readers.records import Record

from .test_zotero import make_zotero


def test_a_standalone_pdf_keeps_the_title_given_in_zotero(tmp_path: Path) -> None:
    z = make_zotero(tmp_path / "Z")
    z.add_standalone_pdf(
        "HHHH8888",
        ["Proceedings of Something 2020\nA Running Head Not The Title", "Body text " * 40],
        file_title="Deep Sets for Point Clouds",
        file_name="zaheer17.pdf",
    )
    z.add_standalone_pdf(
        "IIII9999", ["Sparse Mixtures of Experts at Scale\nSomeone", "Body " * 40],
        file_title="Full Text PDF", file_name="moe.pdf",
    )  # fmt: skip
    z.close()
    records = zotero.read_zotero(tmp_path / "Z").records
    titles = sorted(r.title for r in records if r.file in ("zotero:HHHH8888", "zotero:IIII9999"))
    assert titles == ["Deep Sets for Point Clouds", "Sparse Mixtures of Experts at Scale"]


def test_merging_a_preprint_with_its_published_item_keeps_the_journal_doi() -> None:
    preprint = Record(
        title="Deep Sets", file="zotero:A", line=0, arxiv="1703.06114",
        doi="10.48550/arxiv.1703.06114",
    )  # fmt: skip
    published = Record(title="Deep Sets", file="zotero:B", line=0, doi="10.5555/3294996.3295098")
    for records in ([preprint, published], [published, preprint]):
        (paper,) = merge(records)
        assert paper.doi == "10.5555/3294996.3295098"
        assert paper.arxiv == "1703.06114"


def test_a_standalone_scan_without_text_is_not_a_paper(tmp_path: Path) -> None:
    z = make_zotero(tmp_path / "Z")
    z.add_standalone_pdf("JJJJ0000", ["", ""], file_title="scan.pdf")
    z.close()
    result = zotero.read_zotero(tmp_path / "Z")
    assert not [r for r in result.records if r.file == "zotero:JJJJ0000"]
    assert any("no text layer" in p.message for p in result.problems)
