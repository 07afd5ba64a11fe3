"""One cleaning rule and one title key for every reader (notes, imports, fetched abstracts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search import Library
from search.readers.bibtex import read_bibtex
from search.readers.jsonl import read_jsonl
from search.readers.markdown import read_markdown_file
from search.readers.records import clean_text, looks_like_arxiv_id, normalise_title, parse_arxiv_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Plain title  ", "Plain title"),
        ("Rock &amp; Roll", "Rock & Roll"),
        ("Studentâ€“Teacher Anomaly Detection", "Student–Teacher Anomaly Detection"),
        ("Caf\u0065\u0301 society", "Caf\u00e9 society"),  # NFC
        ("It\u2019s \u201cfine\u201d", "It\u2019s \u201cfine\u201d"),  # as written
        ("R&D on caf&eacute;s", "R&D on cafés"),
        ("Déjà vu", "Déjà vu"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_rock_and_roll_normalises_the_same_everywhere(tmp_path: Path) -> None:
    key = normalise_title("Rock & Roll")
    assert normalise_title("Rock &amp; Roll") == key == normalise_title("ROCK &AMP; ROLL")
    md = tmp_path / "a.md"
    md.write_text("* Rock &amp; Roll\n> a note\n", encoding="utf-8")
    jl = tmp_path / "b.jsonl"
    jl.write_text(json.dumps({"title": "Rock &amp; Roll"}) + "\n", encoding="utf-8")
    bib = tmp_path / "c.bib"
    bib.write_text("@misc{r, title={Rock \\& Roll}}\n", encoding="utf-8")
    titles = [
        read_markdown_file(md, "a.md").records[0].title,
        read_jsonl(jl, "b.jsonl").records[0].title,
        read_bibtex(bib, "c.bib").records[0].title,
    ]
    assert titles == ["Rock & Roll"] * 3
    assert {normalise_title(t) for t in titles} == {key}


def test_an_import_joins_the_note_it_matches(library: Path, tmp_path: Path) -> None:
    (library / "notes" / "reading.md").write_text("* Rock &amp; Roll\n> a note\n")
    src = tmp_path / "lib.jsonl"
    src.write_text(json.dumps({"title": "Rock &amp; Roll", "abstract": "About music."}) + "\n")
    lib = Library(library, model="fake")
    lib.import_files([src])
    lib.rebuild()
    (paper,) = lib.papers()
    assert paper.title == "Rock & Roll"
    assert paper.note == "a note" and paper.abstract == "About music."


@pytest.mark.parametrize(
    ("text", "whole", "bare"),
    [
        ("1707.01495", True, "1707.01495"),
        ("arXiv:1707.01495v2", True, "1707.01495"),
        ("hep-th/9901001", True, "hep-th/9901001"),
        ("https://arxiv.org/abs/1707.01495", True, "1707.01495"),
        ("see 1707.01495 for details", False, "1707.01495"),
        ("Circle Loss", False, None),
    ],
)
def test_arxiv_ids(text: str, whole: bool, bare: str | None) -> None:
    assert looks_like_arxiv_id(text) is whole
    assert parse_arxiv_id(text) == bare
