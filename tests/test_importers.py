"""Tests for reading BibTeX / JSON lines and importing them into notes/imported/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.errors import ImportFailed
from search.faces.output import import_json
from search.library import merge
from search.readers.bibtex import read_bibtex
from search.readers.fields import unwrap
from search.readers.importers import import_files, read_note_data
from search.readers.jsonl import read_jsonl
from search.readers.records import Record

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CVPR = DATA / "cvpr2021" / "papers.jsonl"
ARXIV = DATA / "arxiv" / "arxiv-metadata-oai-snapshot.sample.jsonl"

needs_data = pytest.mark.skipif(not CVPR.is_file(), reason="shared data sets not present")

BIB = r"""% Zotero export
@article{he_deep_2016,
	title = {{Deep} {Residual} {Learning} for {Image} {Recognition}},
	url = {http://arxiv.org/abs/1512.03385},
	doi = {10.1109/CVPR.2016.90},
	abstract = {Deeper neural networks are more difficult to train.
We present a residual learning framework.},
	journal = {arXiv:1512.03385 [cs]},
	author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
	year = {2016},
	keywords = {Computer Vision, resnet},
	annote = {Comment: residuals \& skip connections},
}

@inproceedings{muller2020,
  title={Sch{\"o}n und Gr{\"{u}}n: {\'E}tudes of na\"ive {B}ayes},
  author={M{\"u}ller, J{\"o}rg and Fran{\c{c}}ois, Ren{\'e} and {Google and Friends}},
  booktitle={Proceedings of CVPR},
  year={2020}
}

@article{broken2021,
  title = {Unclosed {brace,
  year = 2021
}

@misc{vaswani2017attention,
  title={Attention Is All You Need},
  author={Ashish Vaswani and Noam Shazeer},
  year={2017},
  eprint={1706.03762},
  archivePrefix={arXiv},
  primaryClass={cs.CL}
}
"""


def line_of(start: str) -> int:
    return next(i for i, line in enumerate(BIB.splitlines(), 1) if line.startswith(start))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_bibtex_zotero_and_scholar_entries(tmp_path: Path) -> None:
    result = read_bibtex(write(tmp_path / "lib.bib", BIB), "lib.bib")
    by_key = {r.extra["id"]: r for r in result.records}
    assert set(by_key) == {"he_deep_2016", "muller2020", "vaswani2017attention"}

    he = by_key["he_deep_2016"]
    assert he.title == "Deep Residual Learning for Image Recognition"
    assert he.line == 2
    assert he.doi == "10.1109/cvpr.2016.90"
    assert he.arxiv == "1512.03385"
    assert he.authors == ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"]
    assert he.year == 2016
    assert he.tags == ["Computer Vision", "resnet"]
    assert he.note == "Comment: residuals & skip connections"
    assert he.abstract == (
        "Deeper neural networks are more difficult to train. We present a residual learning "
        "framework."
    )

    mu = by_key["muller2020"]
    assert mu.title == "Schön und Grün: Études of naïve Bayes"
    assert mu.authors == ["Jörg Müller", "René François", "Google and Friends"]
    assert mu.venue == "Proceedings of CVPR"

    va = by_key["vaswani2017attention"]
    assert va.arxiv == "1706.03762"
    assert va.line == line_of("@misc{vaswani2017attention")

    broken = line_of("@article{broken2021")
    assert [(p.line, "broken2021" in p.message) for p in result.problems] == [(broken, True)]
    assert all(p.file == "lib.bib" for p in result.problems)


def test_bibtex_duplicate_key_is_a_problem(tmp_path: Path) -> None:
    text = "@misc{a, title={One}}\n\n@misc{a, title={Two}}\n"
    result = read_bibtex(write(tmp_path / "d.bib", text), "d.bib")
    assert [r.title for r in result.records] == ["One"]
    assert len(result.problems) == 1
    assert result.problems[0].line == 3
    assert "duplicate" in result.problems[0].message


@needs_data
def test_arxiv_snapshot_unwraps_and_keeps_ids() -> None:
    result = read_jsonl(ARXIV, "arxiv.jsonl")
    assert len(result.records) == 200 and not result.problems
    first = result.records[0]
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert first.extra["id"] == "0704.0001" and first.arxiv == "0704.0001"
    assert first.doi == "10.1103/physrevd.76.013009"
    assert first.year == 2007
    assert first.authors[0] == "C. Balázs"
    for r in result.records:
        assert "\n" not in r.title
        for paragraph in r.abstract.split("\n\n"):
            assert "\n" not in paragraph and paragraph == paragraph.strip()
    # A real paragraph break (an indented line in the snapshot) is kept.
    multi = [r for r in result.records if "\n\n" in r.abstract]
    assert multi, "the sample has abstracts with several paragraphs"
    assert any("Djoković" in r.abstract for r in result.records)


def test_unwrap_joins_lines_and_keeps_paragraphs() -> None:
    text = "  First line\nwrapped here.\n  Second paragraph\nalso wrapped.\n"
    assert unwrap(text) == "First line wrapped here.\n\nSecond paragraph also wrapped."


@needs_data
def test_cvpr2021_import_and_idempotency(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    report = import_files([CVPR], notes)
    [item] = report.files
    assert item.read == 1660 and item.written_records == 1660 and not item.problems
    assert item.written == notes / "imported" / "papers.jsonl"
    assert item.written is not None
    data = item.written.read_bytes()
    back = read_jsonl(item.written, "imported/papers.jsonl")
    assert len(back.records) == 1660 and not back.problems
    assert all(r.abstract for r in back.records)
    assert all(r.extra.get("id") for r in back.records)
    with_arxiv = [r for r in back.records if r.arxiv]
    assert len(with_arxiv) > 1000

    again = import_files([CVPR], notes)
    # The same report, except that nothing is new the second time.
    assert report.files[0].added == 1660 and again.files[0].added == 0
    again.files[0].added = 1660
    assert import_json(again) == import_json(report)
    assert item.written.read_bytes() == data
    assert sorted(p.name for p in (notes / "imported").iterdir()) == [
        ".import.lock",
        ".origins.json",
        ".papers.jsonl.base",
        "papers.jsonl",
    ]


def test_canonical_format_round_trip(tmp_path: Path) -> None:
    src = write(tmp_path / "in" / "lib.bib", BIB)
    notes = tmp_path / "notes"
    report = import_files([src], notes)
    written = report.files[0].written
    assert written is not None
    lines = written.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert list(first) == [
        "title",
        "abstract",
        "authors",
        "year",
        "venue",
        "arxiv",
        "doi",
        "url",
        "id",
        "note",
        "tags",
        "source",
    ]
    assert "Schön" in lines[1]  # ensure_ascii=False
    original = read_bibtex(src, "lib.bib").records
    back = read_jsonl(written, "imported/lib.jsonl").records
    for a, b in zip(original, back, strict=True):
        assert (a.title, a.abstract, a.authors, a.year, a.venue, a.arxiv, a.doi, a.url) == (
            b.title,
            b.abstract,
            b.authors,
            b.year,
            b.venue,
            b.arxiv,
            b.doi,
            b.url,
        )
        assert (a.note, a.tags, a.extra["id"]) == (b.note, b.tags, b.extra["id"])
    # Problems of the broken entry are reported by the import too.
    assert [p.line for p in report.files[0].problems] == [line_of("@article{broken2021")]


def test_same_stem_from_two_folders_does_not_overwrite(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "papers.jsonl", '{"title": "Paper A", "abstract": "x"}\n')
    b = write(tmp_path / "b" / "papers.jsonl", '{"title": "Paper B", "abstract": "y"}\n')
    notes = tmp_path / "notes"
    ra = import_files([a], notes)
    rb = import_files([b], notes)
    assert ra.files[0].written == notes / "imported" / "papers.jsonl"
    assert rb.files[0].written == notes / "imported" / "papers-2.jsonl"
    # Re-importing either keeps its own name.
    assert import_files([b], notes).files[0].written == notes / "imported" / "papers-2.jsonl"
    assert import_files([a], notes).files[0].written == notes / "imported" / "papers.jsonl"
    assert "Paper A" in (notes / "imported" / "papers.jsonl").read_text()


def test_hand_written_file_with_same_name_is_not_overwritten(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    mine = write(notes / "imported" / "papers.jsonl", '{"title": "Mine"}\n')
    src = write(tmp_path / "papers.jsonl", '{"title": "Theirs"}\n')
    report = import_files([src], notes)
    assert report.files[0].written == notes / "imported" / "papers-2.jsonl"
    assert mine.read_text() == '{"title": "Mine"}\n'


def test_file_inside_notes_needs_no_import(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    inside = write(notes / "reading.jsonl", '{"title": "T"}\n')
    report = import_files([inside], notes)
    assert report.files[0].written is None
    assert "already in the notes folder" in report.files[0].message
    assert not (notes / "imported").exists()


def test_unknown_and_missing_files_fail_clearly(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    with pytest.raises(ImportFailed, match="no such file"):
        import_files([tmp_path / "nope.bib"], notes)
    csv = write(tmp_path / "list.csv", "title,abstract\nA,B\n")
    with pytest.raises(ImportFailed, match="unknown format"):
        import_files([csv], notes)
    junk = write(tmp_path / "junk.jsonl", "this is not json\n")
    with pytest.raises(ImportFailed, match="no paper could be read"):
        import_files([junk], notes)
    assert not notes.exists()


def test_duplicates_within_one_import_are_joined(tmp_path: Path) -> None:
    src = write(
        tmp_path / "dups.jsonl",
        "\n".join(
            [
                '{"title": "Self2Self With Dropout", "id": "s2s"}',
                '{"title": "self2self with dropout", "abstract": "We denoise."}',
                '{"title": "Other", "id": "s2s"}',
                '{"title": "Third"}',
            ]
        ),
    )
    report = import_files([src], tmp_path / "notes")
    item = report.files[0]
    assert (item.read, item.written_records) == (4, 2)
    assert item.written is not None
    back = read_jsonl(item.written, "x").records
    assert [r.title for r in back] == ["Self2Self With Dropout", "Third"]
    assert back[0].abstract == "We denoise."


def test_beir_corpus(tmp_path: Path) -> None:
    src = write(
        tmp_path / "corpus.jsonl",
        '{"_id": "4983", "title": "Microstructural development", "text": "Alterations of..."}\n'
        '{"_id": "5836", "title": "", "text": "No title here"}\n',
    )
    result = read_jsonl(src, "corpus.jsonl")
    [r] = result.records
    assert r.extra["id"] == "4983" and r.abstract == "Alterations of..."
    assert [(p.line, p.message) for p in result.problems] == [(2, "record has no title")]


def test_bad_json_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    src = write(
        tmp_path / "mixed.jsonl",
        '{"title": "Good one", "abstract": "a", "authors": "A. One, B. Two", "year": "2020"}\n'
        "\n"
        '{"title": "Broken", \n'
        "[1, 2]\n"
        '{"abstract": "no title"}\n'
        '{"title": "Good two", "authors": ["C"], "tags": ["x", "y"],'
        ' "arxiv": "arXiv:2101.00001v2"}\n',
    )
    result = read_jsonl(src, "mixed.jsonl")
    assert [r.title for r in result.records] == ["Good one", "Good two"]
    assert [r.line for r in result.records] == [1, 6]
    assert result.records[0].authors == ["A. One", "B. Two"]
    assert result.records[0].year == 2020
    assert result.records[1].arxiv == "2101.00001"
    assert [p.line for p in result.problems] == [3, 4, 5]
    assert all(p.file == "mixed.jsonl" for p in result.problems)


def test_read_note_data_dispatches_on_suffix(tmp_path: Path) -> None:
    bib = write(tmp_path / "a.bib", "@misc{k, title={T}}\n")
    jl = write(tmp_path / "a.jsonl", '{"title": "T"}\n')
    assert [r.title for r in read_note_data(bib, "a.bib").records] == ["T"]
    assert [r.title for r in read_note_data(jl, "a.jsonl").records] == ["T"]
    assert read_note_data(tmp_path / "a.txt", "a.txt").problems


def test_fetcher_not_found_lines_are_not_records(tmp_path: Path) -> None:
    src = write(
        tmp_path / "abstracts.jsonl",
        '{"title": "Lost paper", "status": "not_found", "source": "arxiv"}\n'
        '{"title": "Found", "abstract": "Text", "source": "arxiv", "matched_title": "Found!",'
        ' "score": 98.5}\n',
    )
    result = read_jsonl(src, "abstracts.jsonl")
    [r] = result.records
    assert r.extra["matched_title"] == "Found!" and r.extra["score"] == "98.5"
    assert not result.problems


def test_imported_abstract_merges_with_note() -> None:
    note = Record(
        title="Self2Self With Dropout: Learning Self-Supervised Denoising From Single Image",
        file="cvpr2020.md",
        line=12,
        note="Train a denoiser from one noisy image with dropout.",
    )
    imported = Record(
        title="Self2Self with dropout -- learning self-supervised denoising from single image",
        file="imported/papers.jsonl",
        line=3,
        abstract="In the last few years, image denoising has benefited a lot...",
    )
    [paper] = merge([note, imported])
    assert paper.notes == ["Train a denoiser from one noisy image with dropout."]
    assert paper.abstract.startswith("In the last few years")
    assert paper.title == note.title


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text())
def test_readers_never_raise(tmp_path: Path, text: str) -> None:
    for name, reader in (("x.jsonl", read_jsonl), ("x.bib", read_bibtex)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = reader(path, name)
        assert all(r.title for r in result.records)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.lists(
        st.one_of(
            st.just("@article{"),
            st.just("title = {"),
            st.just("}"),
            st.just('\\"{u}'),
            st.just('{"title": '),
            st.just("\n"),
            st.text(max_size=10),
        ),
        max_size=30,
    ).map("".join)
)
def test_readers_never_raise_on_near_miss_syntax(tmp_path: Path, text: str) -> None:
    lines = text.count("\n") + 1
    for name, reader in (("y.jsonl", read_jsonl), ("y.bib", read_bibtex)):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = reader(path, name)
        # What comes back is usable: titled records and problems that point into the file.
        for r in result.records:
            assert r.title and r.title == r.title.strip(), r
            assert r.file == name and 1 <= r.line <= lines, r
        for p in result.problems:
            assert p.file == name and p.message, p
            assert p.line is None or 1 <= p.line <= lines, p
        if not text.strip():
            assert not result.records


def test_hundred_thousand_lines(tmp_path: Path) -> None:
    # Its speed is measured in bench/, not asserted here.
    src = tmp_path / "big.jsonl"
    row = {"title": "", "abstract": "We study a problem. " * 40, "authors": ["A. B", "C. D"]}
    with src.open("w", encoding="utf-8") as f:
        for i in range(100_000):
            row["title"] = f"Paper number {i} on résumé parsing"
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result = read_jsonl(src, "big.jsonl")
    assert len(result.records) == 100_000
    assert result.records[-1].title == "Paper number 99999 on résumé parsing"
