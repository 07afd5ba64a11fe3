"""PDF titles and bodies as real papers print them: the title in the largest type (one or two
lines), not a proceedings header or licence line; `ArXiv ePrint:` ids; a figure labelled
"References" is not the references; `参考文献` is; scans, and Git LFS pointers, are no papers."""

from __future__ import annotations

from pathlib import Path

from search.build import read_file
from search.readers.pdfs import drop_references, read_pdf_file

from .zotero_fixture import _pdf_string, write_pdf_objects

Line = tuple[float, str]


def write_pdf(path: Path, pages: list[list[Line]], title: str | None = None) -> None:
    """A PDF whose lines each have their own font size (Helvetica), top to bottom."""
    objects: list[bytes] = [b"", b""]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for lines in pages:
        y, ops = 760.0, []
        for size, text in lines:
            ops.append(f"BT /F1 {size} Tf 1 0 0 1 50 {y:.0f} Tm {_pdf_string(text)} Tj ET")
            y -= size * 1.4
        stream = " ".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
            f"/F1 3 0 R >> >> /Contents {content} 0 R >>".encode()
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    ).encode()
    info = None
    if title is not None:
        objects.append(f"<< /Title {_pdf_string(title)} >>".encode())
        info = len(objects)
    write_pdf_objects(path, objects, 1, info)


BODY = [(10, "We study a problem and propose a method that works well on benchmarks " * 2)] * 6
REFS = [(12, "References"), (9, "[1] A. Author. A paper. In CVPR, 2019."),
        (9, "[2] B. Author. Another paper. In ICCV, 2017.")]  # fmt: skip


def first_title(tmp_path: Path, first_page: list[Line], meta: str | None = None) -> str:
    pdf = tmp_path / "paper.pdf"
    write_pdf(pdf, [first_page + BODY, BODY], title=meta)
    return read_pdf_file(pdf, "paper.pdf").records[0].title


def test_two_line_title_in_large_type_under_a_proceedings_header(tmp_path: Path) -> None:
    page = [
        (8, "Proceedings of the 37th International Conference on Machine Learning, 2020"),
        (17, "Learning Deep Representations of Fine-Grained"),
        (17, "Visual Descriptions"),
        (11, "Scott Reed, Zeynep Akata, Honglak Lee, Bernt Schiele"),
    ]
    want = "Learning Deep Representations of Fine-Grained Visual Descriptions"
    assert first_title(tmp_path, page) == want


def test_licence_and_header_lines_are_not_titles_without_sizes(tmp_path: Path) -> None:
    page = [
        (10, "Published as a conference paper at ICLR 2021"),
        (10, "Licensed under a Creative Commons Attribution 4.0 International License"),
        (10, "Provided proper attribution is provided, Google hereby grants permission"),
        (10, "Attention Is All You Need"),
        (10, "Ashish Vaswani, Noam Shazeer, Niki Parmar"),
    ]
    assert first_title(tmp_path, page) == "Attention Is All You Need"


def test_arxiv_eprint_line_is_an_id(tmp_path: Path) -> None:
    pdf = tmp_path / "p.pdf"
    write_pdf(pdf, [[(16, "A Title Of Three Words"), (9, "ArXiv ePrint: 0807.3577")] + BODY])
    assert read_pdf_file(pdf, "p.pdf").records[0].arxiv == "0807.3577"


def test_figure_labelled_references_does_not_cut_the_body() -> None:
    pages = [
        ("1", "Title\nIntroduction text"),
        ("2", "Figure 3: our method.\nReferences\nQuery Gallery\nMore body text about method"),
        ("3", "Results and discussion"),
        ("4", "References\n[1] A. Author. A paper. In CVPR, 2019.\n[2] B. Author. 2017."),
    ]
    kept = drop_references(pages)
    assert [label for label, _ in kept] == ["1", "2", "3"]


def test_chinese_references_heading_ends_the_body() -> None:
    pages = [("1", "标题\n引言"), ("2", "正文\n参考文献\n[1] 张三. 论文. 2019.\n[2] 李四. 2018.")]
    kept = drop_references(pages)
    assert kept == [("1", "标题\n引言"), ("2", "正文")]


def test_a_scan_without_text_is_not_a_paper(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    write_pdf(pdf, [[], []])
    result = read_pdf_file(pdf, "scan.pdf")
    assert result.records == [] and "no text layer" in result.problems[0].message


def test_git_lfs_pointer_is_not_indexed_as_text(tmp_path: Path) -> None:
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n"
    )
    for name in ("paper.pdf", "notes.md", "refs.bib"):
        path = tmp_path / name
        path.write_text(pointer, encoding="utf-8")
        result = read_file(path, name)
        assert result.records == [], name
        assert "Git LFS pointer" in result.problems[0].message, name


def test_a_one_word_title_in_large_type_is_the_title(tmp_path: Path) -> None:
    page = [(20.7, "Libtasn1"), (10.9, "A library for the GNU system"), (14.3, "Some Author")]
    assert first_title(tmp_path, page) == "Libtasn1"
