"""Hostile input, round two (issue 24): names and paths from outside, damaged indexes, input
that costs without bound, MCP requests that are not JSON-RPC. Each case is one clear line (or
the right result), no traceback, and nothing indexed before is lost."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from search.errors import FetchError
from search.library import merge
from search.readers import bibtex, importers
from search.readers.bibtex import MAX_BIB_FIELD_CHARS, read_bibtex
from search.readers.fetch import fetch_abstracts
from search.readers.importers import import_files
from search.readers.jsonl import read_jsonl
from search.readers.records import Record
from search.readers.zotero import read_zotero

from .test_cli import one_error_line, rebuild_fake, run
from .test_hostile_index import titles
from .zotero_fixture import Item, ZoteroBuilder

# -- names that are not valid UTF-8 ----------------------------------------------------------


def test_note_file_name_that_is_not_utf8_is_reported_and_the_rest_indexed(seeded: Path) -> None:
    notes = os.fsencode(seeded / "notes")
    with open(notes + b"/bad\xff.md", "w") as f:
        f.write("# X\n\n- Hidden under a bad name\n")
    os.mkdir(notes + b"/dir\xfe")
    with open(notes + b"/dir\xfe/inner.md", "w") as f:
        f.write("# Y\n\n- Hidden in a bad folder\n")
    result = rebuild_fake()
    assert "Traceback" not in result.stderr
    assert "bad\\xff.md" in result.stderr and "not valid UTF-8" in result.stderr
    assert "dir\\xfe/inner.md" in result.stderr
    found = titles(seeded)
    assert len(found) == 16 and "Hidden under a bad name" not in found
    again = rebuild_fake()  # the same problem, not a failure, on the next rebuild
    assert "2 problem(s)" in again.stderr and again.exit_code == 0


# -- paths built from a Zotero database ------------------------------------------------------


def test_zotero_paths_from_the_database_stay_inside_the_data_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "Zotero"
    z = ZoteroBuilder(data_dir)
    z.add(Item("GOOD0001", {"title": "A Good Paper On Otters"}, ft_cache="Otters hold hands."))
    z.add(Item("NULL0001", {"title": "A Paper With A Nul In Its Path"}, pdf=["Some text."]))
    bad = z.add(Item("EVIL0001", {"title": "A Paper Pointing Outside"}))
    z.db.execute(
        "UPDATE itemAttachments SET path = 'storage:pa' || char(0) || 'per.pdf' "
        "WHERE parentItemID = (SELECT itemID FROM items WHERE key = 'NULL0001')"
    )
    # An attachment whose key climbs out of storage/ to a folder holding a full-text cache.
    att = z._item("attachment", "../../outside")
    z.db.execute(
        "INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, path) "
        "VALUES (?, ?, 0, 'application/pdf', 'storage:../../outside/secret.pdf')",
        (att, bad),
    )
    z.close()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / ".zotero-ft-cache").write_text("SECRET outside text")
    (tmp_path / "outside" / "secret.pdf").write_text("%PDF-1.4 SECRET")
    result = read_zotero(data_dir)
    by_title = {r.title: r for r in result.records}
    assert sorted(by_title) == [
        "A Good Paper On Otters",
        "A Paper Pointing Outside",
        "A Paper With A Nul In Its Path",
    ]
    assert by_title["A Good Paper On Otters"].pages[0][2] == "Otters hold hands."
    assert not any("SECRET" in p[2] for r in result.records for p in r.pages)
    messages = " | ".join(str(p) for p in result.problems)
    assert "outside the Zotero folder" in messages and "NUL" in messages


# -- a URL that can never work fails at once --------------------------------------------------


@pytest.mark.parametrize(
    "base", ["file:///etc/passwd", "ftp://example.org/api", "gopher://x", "http://", "nonsense"]
)
def test_fetch_with_a_url_that_can_never_work_fails_at_once(tmp_path: Path, base: str) -> None:
    out = tmp_path / "abstracts.jsonl"
    start = time.monotonic()
    [paper] = merge([Record(title="Some Paper", file="notes.md", line=1)])
    with pytest.raises(FetchError) as info:
        fetch_abstracts([paper], out, base_url=base, delay=0)
    assert time.monotonic() - start < 1.0
    assert "http" in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


# -- JSONL titles that are not text -----------------------------------------------------------


def test_jsonl_titles_that_are_not_text_are_warned_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    rows = [
        {"title": ["a", "b"]},
        {"title": {"x": 1}},
        {"title": 123},
        {"title": True},
        {"_id": "b1", "title": [1], "text": "beir with a list title"},
        {"title": "A Real Title"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = read_jsonl(path, "papers.jsonl")
    assert [r.title for r in result.records] == ["A Real Title"]
    messages = [p.message for p in result.problems]
    assert len(messages) == 5 and all("title is" in m and "not text" in m for m in messages)
    assert "a list" in messages[0] and "an object" in messages[1] and "a number" in messages[2]


# -- BibTeX that costs without bound -----------------------------------------------------------


def macro_bomb(levels: int) -> str:
    """A 1 KB BibTeX file whose last @string macro is 2^levels copies of the first."""
    lines = ['@string{s0 = "ab"}']
    lines += [f"@string{{s{i} = s{i - 1} # s{i - 1}}}" for i in range(1, levels + 1)]
    lines.append(f"@article{{bomb, title = s{levels}, abstract = s{levels} # s{levels}}}")
    lines.append("@article{fine, title = {A Fine Paper About Macros}}")
    return "\n".join(lines) + "\n"


def test_bibtex_macro_bomb_is_bounded_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "bomb.bib"
    path.write_text(macro_bomb(39), encoding="utf-8")
    assert path.stat().st_size < 1200
    result = read_bibtex(path, "bomb.bib")
    by_id = {r.extra["id"]: r for r in result.records}
    assert by_id["fine"].title == "A Fine Paper About Macros"
    assert len(by_id["bomb"].title) == MAX_BIB_FIELD_CHARS
    assert len(by_id["bomb"].abstract) <= MAX_BIB_FIELD_CHARS
    too_long = [p.message for p in result.problems if "too long" in p.message]
    assert len(too_long) == 2 and "field 'title'" in too_long[0]


def test_import_of_a_macro_bomb_is_bounded(tmp_path: Path, library: Path) -> None:
    path = tmp_path / "bomb.bib"
    path.write_text(macro_bomb(39), encoding="utf-8")
    result = run("import", str(path))
    assert "Traceback" not in result.stderr and "too long" in result.stderr


def test_latex_pieces_convert_as_the_whole_does() -> None:
    parts = [
        "the", "denoising", r"\emph{noisy image}", "$x^2 + y$", r"\'{e}t\'{e}", "--", "---",
        "``quoted''", "~", r"\textbf{bold {nested}}", r"\\", r"\cite[p.~3]{key}",
        "%comment here\n", r"\begin{itemize} \item one \item two \end{itemize}",
        r"\LaTeX{}", "x\n\ny", r"{\em emph}", r"\& and \%", "cf.\\ this",
    ]  # fmt: skip
    text = " ".join(parts[(i * 7) % len(parts)] for i in range(3000))
    whole = bibtex._latex_piece_to_text(text)
    for size in (20, 200, 2000):
        pieces = bibtex.latex_pieces(text, size)
        assert "".join(pieces) == text and len(pieces) > len(text) // (size * 10)
        assert "".join(bibtex._latex_piece_to_text(p) for p in pieces) == whole


# -- index/CURRENT and index/ themselves -------------------------------------------------------


def test_current_naming_a_very_long_generation_is_repaired_by_rebuild(seeded: Path) -> None:
    rebuild_fake()
    (seeded / "index" / "CURRENT").write_text("gen-" + "x" * 296)
    line = one_error_line(run("ask", "dropout", ok=False))
    assert "CURRENT" in line and "papers rebuild" in line
    for extra in (["--verify"], []):
        result = rebuild_fake(*extra)
        assert "Traceback" not in result.stderr
    assert run("ask", "dropout", "--json").stdout.strip().startswith("[")


def test_index_that_is_a_plain_file_is_named(seeded: Path) -> None:
    (seeded / "index").write_text("not a folder")
    for args in (["ask", "dropout"], ["rebuild", "--model", "fake"], ["list"]):
        line = one_error_line(run(*args, ok=False))
        assert "is a file, not a folder" in line and "index" in line, args
    assert (seeded / "index").read_text() == "not a folder"  # never deleted: not ours


# -- an import's two files: no kill splits them ------------------------------------------------


class Killed(BaseException):
    """What a SIGKILL at that moment leaves: nothing after it runs."""


@pytest.mark.parametrize("moment", ["before-data", "after-data"])
def test_a_kill_between_an_imports_two_writes_loses_no_source_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    src = tmp_path / "in" / "papers.jsonl"
    src.parent.mkdir()
    src.write_text(json.dumps({"title": "Paper A", "abstract": "first", "id": "a"}) + "\n")
    notes = tmp_path / "notes"
    import_files([src], notes)
    out = notes / "imported" / "papers.jsonl"
    # The source changes; the import writing it is killed between its two files.
    src.write_text(json.dumps({"title": "Paper A", "abstract": "second", "id": "a"}) + "\n")
    real_write = importers.write_atomic

    def dies(path: Path, data: bytes) -> None:
        if path == out and moment == "before-data":
            raise Killed
        real_write(path, data)
        if path == out and moment == "after-data":
            raise Killed

    monkeypatch.setattr(importers, "write_atomic", dies)
    with pytest.raises(Killed):
        import_files([src], notes)
    monkeypatch.undo()
    # Later source updates are still applied, never mistaken for hand edits.
    src.write_text(json.dumps({"title": "Paper A", "abstract": "third", "id": "a"}) + "\n")
    report = import_files([src], notes)
    [obj] = [json.loads(line) for line in out.read_text().splitlines()]
    assert obj["abstract"] == "third"
    assert report.files[0].edits_kept == 0


# -- an unreadable PDF ---------------------------------------------------------------------------


def test_an_unreadable_pdf_is_reported_and_not_listed_as_a_paper(library: Path) -> None:
    (library / "notes" / "a.md").write_text("* A Paper\n> note\n")
    (library / "notes" / "broken_file.pdf").write_bytes(b"%PDF-1.4 not really")
    result = rebuild_fake()
    assert "broken_file.pdf" in result.stderr and "skipped" in result.stderr
    assert titles(library) == ["A Paper"]
    files = {f["file"]: f for f in json.loads(run("list", "--files", "--json").stdout)}
    assert files["notes/broken_file.pdf"]["papers"] == 0
    assert "broken" not in run("list").stdout
