"""Zotero libraries read directly, PDFs page by page, and keyword search in CJK text."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from search import api
from search.build import rebuild
from search.faces.output import hit_json
from search.library import library_paths
from search.query import Searcher
from search.readers import pdfs, zotero
from search.readers.config import load_config

from .test_cli import one_error_line, run
from .zotero_fixture import Annotation, Item, ZoteroBuilder, write_pdf

# Sentences that only one place holds: a highlight, a child note, page 3 of a PDF.
ANNOTATION = "Penguins huddle together in tight circles to survive the Antarctic winter storms."
NOTE = "The lighthouse keeper polished the brass lamp every evening before the ships arrived."
PAGE3 = "Honeybees perform a waggle dance to tell the hive where the flowers with nectar are."
FT_CACHE = "Volcanic ash clouds ground commercial flights across northern Europe for weeks."
TRASHED = "Glaciers carve fjords slowly over thousands of years."


def filler(n: int) -> str:
    return f"This page {n} describes the experimental setup, datasets and training schedule."


def make_zotero(data_dir: Path, wal: bool = False) -> ZoteroBuilder:
    z = ZoteroBuilder(data_dir, wal=wal)
    z.add(
        Item(
            "AAAA1111",
            {
                "title": "A Simple Framework for Contrastive Learning of Visual Representations",
                "abstractNote": "Contrastive self-supervised learning of image features.",
                "date": "2020-02-13 2020-02-13",
                "url": "https://arxiv.org/abs/2002.05709v3",
                "publicationTitle": "ICML",
            },
            authors=[("Ting", "Chen"), ("Geoffrey", "Hinton")],
            tags=["self-supervised", "contrastive"],
            collection=["Vision", "Self-supervised"],
            notes=[f"<h1>My summary</h1><p>{NOTE.replace('brass', '<b>brass</b>')}</p>"],
        )
    )
    z.add(
        Item(
            "BBBB2222",
            {
                "title": "Deep Residual Learning for Image Recognition",
                "abstractNote": "Residual connections make very deep networks trainable.",
                "date": "2016",
                "DOI": "https://doi.org/10.1109/CVPR.2016.90",
                "proceedingsTitle": "CVPR",
            },
            type="conferencePaper",
            authors=[("Kaiming", "He")],
            pdf=[filler(1), filler(2), PAGE3, filler(4), "References\n[1] A. Author. Zebra."],
            annotations=[
                Annotation(ANNOTATION, "reminds me of ensembles", page="5"),
                Annotation("", "a comment without highlighted text", page="ii", kind=2),
            ],
        )
    )
    z.add(
        Item(
            "CCCC3333",
            {"title": "Attention Is All You Need", "extra": "arXiv: 1706.03762"},
            ft_cache=FT_CACHE,
            collection=["NLP"],
        )
    )
    z.add(Item("DDDD4444", {"title": "A Trashed Paper on Glaciers"}, notes=[TRASHED], trashed=True))
    z.add(Item("EEEE5555", {"title": "A Feed Item Nobody Saved"}, library=2))
    return z


@pytest.fixture
def zot(library: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "Zotero"
    make_zotero(data_dir).close()
    run("import", "--zotero", str(data_dir))
    return data_dir


def test_html_notes_become_text() -> None:
    html = "<p>One <b>bold</b> &amp; two</p><ul><li>first</li><li>second</li></ul><style>x</style>"
    assert zotero.html_to_text(html) == "One bold & two\nfirst\nsecond"


def test_read_zotero_items(tmp_path: Path) -> None:
    make_zotero(tmp_path / "Z").close()
    result = zotero.read_zotero(tmp_path / "Z")
    assert result.problems == []
    by_title = {r.title: r for r in result.records}
    # the trashed item, the feed item, notes, attachments and annotations are not papers
    assert sorted(by_title) == [
        "A Simple Framework for Contrastive Learning of Visual Representations",
        "Attention Is All You Need",
        "Deep Residual Learning for Image Recognition",
    ]
    simclr = by_title["A Simple Framework for Contrastive Learning of Visual Representations"]
    assert simclr.arxiv == "2002.05709"
    assert simclr.authors == ["Ting Chen", "Geoffrey Hinton"]
    assert simclr.year == 2020
    assert simclr.venue == "ICML"
    assert simclr.tags == ["contrastive", "self-supervised"]
    assert simclr.section == ["Vision", "Self-supervised"]
    assert simclr.note == "My summary\n" + NOTE
    assert simclr.file == "zotero:AAAA1111"
    resnet = by_title["Deep Residual Learning for Image Recognition"]
    assert resnet.doi == "10.1109/cvpr.2016.90"
    assert f"highlight p. 5: “{ANNOTATION}” — reminds me of ensembles" in resnet.note
    assert "note p. ii: a comment without highlighted text" in resnet.note
    # the PDF page by page, References cut off
    assert [p[1] for p in resnet.pages] == ["1", "2", "3", "4"]
    assert resnet.pages[2] == ["zotero:BBBB2222A0/paper.pdf", "3", PAGE3]
    assert not any("Zebra" in p[2] for p in resnet.pages)
    attention = by_title["Attention Is All You Need"]
    assert attention.arxiv == "1706.03762"
    assert attention.pages == [["zotero:CCCC3333A0/paper.pdf", "", FT_CACHE]]
    assert not any(TRASHED in r.note for r in result.records)


def test_a_standalone_pdf_is_a_paper(tmp_path: Path) -> None:
    z = make_zotero(tmp_path / "Z")
    z.add_standalone_pdf(
        "GGGG7777",
        ["Sparse Mixtures of Experts at Scale\nSomeone Else", PAGE3.replace("Honeybees", "Ants")],
        file_title="moe-2021.pdf",
    )
    z.close()
    records = {r.title: r for r in zotero.read_zotero(tmp_path / "Z").records}
    moe = records["Sparse Mixtures of Experts at Scale"]
    assert moe.file == "zotero:GGGG7777"
    assert [p[:2] for p in moe.pages] == [
        ["zotero:GGGG7777/moe-2021.pdf", "1"],
        ["zotero:GGGG7777/moe-2021.pdf", "2"],
    ]


def test_changes_still_in_the_wal_are_read(tmp_path: Path) -> None:
    """Zotero runs with a -wal; what it has not checkpointed must not be lost."""
    z = make_zotero(tmp_path / "Z", wal=True)
    z.commit()
    z.add(Item("FFFF6666", {"title": "Added While Zotero Runs"}))
    z.commit()  # the connection stays open, as Zotero's does: the change is in the -wal only
    assert (tmp_path / "Z" / "zotero.sqlite-wal").stat().st_size > 0
    titles = [r.title for r in zotero.read_zotero(tmp_path / "Z").records]
    assert "Added While Zotero Runs" in titles
    z.close()


def test_import_zotero_records_the_directory(library: Path, tmp_path: Path) -> None:
    (library / "papers.toml").write_text('# mine\n[notes]\nexclude = ["drafts/**"]\n')
    make_zotero(tmp_path / "Z").close()
    out = run("import", "--zotero", str(tmp_path / "Z")).stdout
    assert "papers.toml" in out
    text = (library / "papers.toml").read_text()
    assert text.startswith('# mine\n[notes]\nexclude = ["drafts/**"]\n')
    assert load_config(library).zotero_dir == (tmp_path / "Z").resolve()
    # naming another directory replaces the entry
    make_zotero(tmp_path / "Y").close()
    run("import", "--zotero", str(tmp_path / "Y"))
    assert load_config(library).zotero_dir == (tmp_path / "Y").resolve()
    assert (library / "papers.toml").read_text().count("data_dir") == 1


def test_import_zotero_without_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = one_error_line(run("import", "--zotero", str(tmp_path / "empty"), ok=False))
    assert "no zotero.sqlite" in line


def test_bad_config_is_one_line(library: Path) -> None:
    (library / "notes" / "a.md").write_text("* A Paper\n> note\n")
    (library / "papers.toml").write_text("[zotero]\ndata_dir = 3\n")
    line = one_error_line(run("rebuild", "--model", "fake", ok=False))
    assert "data_dir" in line


def _ask(question: str, mode: str = "hybrid", model: str = "fake") -> list:
    s = Searcher(library_paths().index, model=model)
    try:
        return s.ask(question, k=3, mode=mode)
    finally:
        s.index.close()


def test_zotero_and_pdf_are_indexed_and_cited(library: Path, zot: Path) -> None:
    notes = library / "notes"
    # the same paper in Markdown (joined by DOI) and a PDF of its own under notes/
    (notes / "reading.md").write_text(
        "# Reading\n\n* Deep Residual Learning for Image Recognition\n"
        "> doi:10.1109/cvpr.2016.90 my favourite\n"
    )
    write_pdf(
        notes / "bees.pdf",
        [
            "Collective Behaviour of Social Insects\nAnonymous Authors",
            filler(2),
            "Foragers return and dance: the waggle run angle encodes the direction of food.",
        ],
        title="Collective Behaviour of Social Insects",
    )
    report = rebuild(library_paths(), model="fake")
    assert report.problems == []
    # 3 Zotero papers (one joined with the Markdown note) + the PDF
    assert report.papers == 4
    hits = _ask("waggle run angle direction of food", mode="keyword")
    assert hits[0].paper.title == "Collective Behaviour of Social Insects"
    assert (hits[0].page_file, hits[0].page) == ("bees.pdf", "3")
    assert hits[0].where == "notes/bees.pdf:p.3"
    hits = _ask("honeybees waggle dance hive flowers nectar")
    assert hits[0].paper.title == "Deep Residual Learning for Image Recognition"
    assert hits[0].where == "zotero:BBBB2222A0/paper.pdf:p.3"
    shown = hit_json(api.Hit.from_query(hits[0]))
    assert (shown["page"], shown["page_file"]) == ("3", "zotero:BBBB2222A0/paper.pdf")
    assert shown["cite"] == "zotero:BBBB2222A0/paper.pdf:p.3"
    assert sorted(hits[0].paper.places) == ["notes/reading.md:3", "zotero:BBBB2222"]
    assert _ask("penguins huddle antarctic winter")[0].paper.title.startswith("Deep Residual")
    # found in the annotation (the note), not on a page: no page is claimed
    annotated = _ask("penguins huddle antarctic winter", mode="keyword")[0]
    assert annotated.page is None and annotated.where == "notes/reading.md:3"
    assert _ask("lighthouse keeper brass lamp")[0].paper.title.startswith("A Simple Framework")
    assert _ask("volcanic ash flights europe")[0].paper.title == "Attention Is All You Need"
    assert all("Glacier" not in h.paper.title for h in _ask("glaciers carve fjords"))
    # the reference list is not indexed
    idx_db = sqlite3.connect(next((library / "index").glob("gen-*")) / "index.sqlite")
    zebra = "SELECT count(*) FROM chunks WHERE text LIKE '%Zebra%'"
    assert idx_db.execute(zebra).fetchone() == (0,)
    idx_db.close()
    table = run("ask", "honeybees waggle dance", "--model", "fake").stdout
    assert "zotero:BBBB2222A0/paper.pdf:p.3" in table
    top = json.loads(run("ask", "waggle run angle", "--json", "--mode", "keyword").stdout)[0]
    assert (top["page"], top["cite"]) == ("3", "notes/bees.pdf:p.3")


def test_unchanged_rebuild_reads_nothing(
    library: Path, zot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pdf(library / "notes" / "bees.pdf", [filler(1), PAGE3], title="Bees And Their Dances")
    reads = {"zotero": 0, "pdf": 0, "items": 0}
    real_read, real_extract, real_item = zotero._read, pdfs._extract, zotero._item_record

    def count_read(*a: object) -> None:
        reads["zotero"] += 1
        real_read(*a)  # type: ignore[arg-type]

    def count_extract(path: Path) -> pdfs.PdfText:
        reads["pdf"] += 1
        return real_extract(path)

    def count_item(*a: object) -> object:
        reads["items"] += 1
        return real_item(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(zotero, "_read", count_read)
    monkeypatch.setattr(pdfs, "_extract", count_extract)
    monkeypatch.setattr(zotero, "_item_record", count_item)
    first = rebuild(library_paths(), model="fake")
    # the notes PDF and the Zotero attachment; the 3 Zotero papers
    assert reads == {"zotero": 1, "pdf": 2, "items": 3}
    assert first.files == 2 and first.files_parsed == 2

    reads.update(zotero=0, pdf=0, items=0)
    again = rebuild(library_paths(), model="fake")
    assert again.nothing_changed and again.files_parsed == 0
    assert reads == {"zotero": 0, "pdf": 0, "items": 0}

    # Zotero wrote to its database, nothing about the papers changed: the database is read
    # again, but no item is made again (no note parsed, no full text read, no PDF hashed)
    db = zot / "zotero.sqlite"
    st = db.stat()
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = rebuild(library_paths(), model="fake")
    assert touched.files_parsed == 1 and not touched.nothing_changed
    assert reads == {"zotero": 1, "pdf": 0, "items": 0}
    assert touched.chunks_embedded == 0

    # one item gains a note: only it is made again, and only its text is embedded
    reads.update(zotero=0)
    con = sqlite3.connect(db)
    con.execute("INSERT INTO items (itemID, itemTypeID, libraryID, key) VALUES (99, 28, 1, 'N99')")
    con.execute(
        "INSERT INTO itemNotes VALUES (99, (SELECT itemID FROM items WHERE key='CCCC3333'), "
        "'<p>Transformers replace recurrence with attention.</p>', '')"
    )
    con.commit()
    con.close()
    changed = rebuild(library_paths(), model="fake")
    assert reads == {"zotero": 1, "pdf": 0, "items": 1}
    assert changed.papers_changed == 1 and changed.papers_unchanged == 3
    assert _ask("recurrence attention", mode="keyword")[0].paper.title == (
        "Attention Is All You Need"
    )


def test_a_scanned_pdf_is_a_problem_not_an_error(library: Path) -> None:
    (library / "notes" / "a.md").write_text("* A Paper\n> note\n")
    write_pdf(library / "notes" / "scan.pdf", ["", ""])
    report = rebuild(library_paths(), model="fake")
    assert any("scan.pdf" in p and "no text layer" in p for p in report.problems)
    assert report.papers == 1  # a scan with no text is no paper to find (issue 21)


def test_a_broken_pdf_is_a_problem(library: Path) -> None:
    (library / "notes" / "a.md").write_text("* A Paper\n> note\n")
    (library / "notes" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = rebuild(library_paths(), model="fake")
    assert any(p.startswith("broken.pdf") for p in report.problems)


def test_pdf_joins_its_paper_by_arxiv_id(library: Path) -> None:
    (library / "notes" / "a.md").write_text(
        "* Attention Is All You Need\n> arXiv:1706.03762 transformers\n"
    )
    write_pdf(
        library / "notes" / "1706.03762.pdf",
        ["Attention Is All You Need\narXiv:1706.03762v7 [cs.CL]", "Scaled dot product."],
    )
    report = rebuild(library_paths(), model="fake")
    assert report.papers == 1


CJK_NOTES = """# 笔记

* 对比学习的视觉表示框架
> 这篇论文用数据增强和对比损失函数学习图像特征。

* 深層残差学習による画像認識
> 残差接続により非常に深いネットワークの学習が可能になる。

* 트랜스포머 기반 기계 번역
> 어텐션 메커니즘만으로 번역 모델을 만들었다. 대조학습은 사용하지 않는다.

* Plain English Paper About Loss Functions
> losses for metric learning
"""


@pytest.mark.parametrize(
    "question, title",
    [
        ("损失函数", "对比学习的视觉表示框架"),  # a two-character word pair
        ("对比学习", "对比学习的视觉表示框架"),
        ("数据增强", "对比学习的视觉表示框架"),
        ("残差接続", "深層残差学習による画像認識"),
        ("ネットワーク", "深層残差学習による画像認識"),
        ("어텐션 메커니즘", "트랜스포머 기반 기계 번역"),
        ("번역", "트랜스포머 기반 기계 번역"),  # a word glued to its neighbours in the text
        ("loss", "Plain English Paper About Loss Functions"),  # stemming still works
    ],
)
def test_cjk_keyword_search(library: Path, question: str, title: str) -> None:
    (library / "notes" / "cjk.md").write_text(CJK_NOTES, encoding="utf-8")
    rebuild(library_paths(), model="fake")
    hits = _ask(question, mode="keyword")
    assert hits and hits[0].paper.title == title


@pytest.mark.model
def test_ask_finds_annotation_note_and_page_with_the_real_model(library: Path, zot: Path) -> None:
    (library / "notes" / "other.md").write_text(
        "# Other\n\n* Batch Normalization: Accelerating Deep Network Training\n"
        "> normalising activations speeds up training\n"
    )
    rebuild(library_paths())
    for question, title, where in [
        ("how do penguins keep warm in winter?", "Deep Residual", None),
        ("who looked after the lamp in the lighthouse?", "A Simple Framework", None),
        ("how do bees tell each other where flowers are?", "Deep Residual", "p.3"),
    ]:
        top = _ask(question, model=None)[0]  # type: ignore[arg-type]
        assert top.paper.title.startswith(title), question
        if where:
            assert top.where.endswith("paper.pdf:p.3")
