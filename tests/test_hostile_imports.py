"""Hostile imports: hand edits survive a re-import, concurrent imports lose nothing, odd text
(lone surrogates, BibTeX macros) is read or reported, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from search.readers.bibtex import read_bibtex
from search.readers.importers import import_files


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*objs: dict[str, object]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def read_objs(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def by_title(objs: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {o["title"]: o for o in objs}


# -- D7: re-import keeps hand edits -------------------------------------------------------------


def test_reimport_keeps_hand_edits_and_adds_new_papers(tmp_path: Path) -> None:
    src = write(
        tmp_path / "in" / "papers.jsonl",
        jsonl(
            {"title": "Paper A", "abstract": "old abstract of A", "id": "a"},
            {"title": "Paper B", "abstract": "abstract of B", "year": 2020, "id": "b"},
        ),
    )
    notes = tmp_path / "notes"
    import_files([src], notes)
    out = notes / "imported" / "papers.jsonl"
    objs = read_objs(out)
    objs[0]["note"] = "my own note on A"  # a field added by hand
    objs[1]["year"] = 1999  # a field changed by hand
    objs[1]["title"] = "Paper B (fixed title)"
    objs.append({"title": "Paper I added by hand"})
    out.write_text(jsonl(*objs), encoding="utf-8")

    write(
        src,
        jsonl(
            {"title": "Paper A", "abstract": "new abstract of A", "id": "a"},
            {"title": "Paper B", "abstract": "abstract of B", "year": 2021, "id": "b"},
            {"title": "Paper C", "abstract": "abstract of C", "id": "c"},
        ),
    )
    report = import_files([src], notes)
    assert report.files[0].written == out
    got = by_title(read_objs(out))
    assert got["Paper A"]["note"] == "my own note on A"
    # A field the user never touched follows the source.
    assert got["Paper A"]["abstract"] == "new abstract of A"
    assert got["Paper B (fixed title)"]["year"] == 1999
    assert "Paper B" not in got
    assert got["Paper C"]["abstract"] == "abstract of C"
    assert "Paper I added by hand" in got
    assert report.files[0].edits_kept == 2
    assert report.files[0].added == 1


def test_reimport_of_an_unchanged_source_keeps_the_edited_file_byte_for_byte(
    tmp_path: Path,
) -> None:
    src = write(tmp_path / "in" / "lib.jsonl", jsonl({"title": "Paper A", "abstract": "x"}))
    notes = tmp_path / "notes"
    import_files([src], notes)
    out = notes / "imported" / "lib.jsonl"
    edited = '{"title": "Paper A", "abstract": "x", "note": "mine", "stars": 5}\n'
    out.write_text(edited, encoding="utf-8")
    import_files([src], notes)
    assert out.read_text(encoding="utf-8") == edited


def test_paper_gone_from_the_source_is_dropped_unless_edited(tmp_path: Path) -> None:
    src = write(
        tmp_path / "in" / "lib.jsonl",
        jsonl({"title": "Keep me"}, {"title": "Gone untouched"}, {"title": "Gone but edited"}),
    )
    notes = tmp_path / "notes"
    import_files([src], notes)
    out = notes / "imported" / "lib.jsonl"
    objs = read_objs(out)
    objs[2]["note"] = "I wrote this"
    out.write_text(jsonl(*objs), encoding="utf-8")
    write(src, jsonl({"title": "Keep me"}))
    report = import_files([src], notes)
    got = by_title(read_objs(out))
    assert set(got) == {"Keep me", "Gone but edited"}
    assert got["Gone but edited"]["note"] == "I wrote this"
    assert report.files[0].removed == 1


def test_broken_line_written_by_hand_is_kept_verbatim(tmp_path: Path) -> None:
    src = write(tmp_path / "in" / "lib.jsonl", jsonl({"title": "Paper A"}))
    notes = tmp_path / "notes"
    import_files([src], notes)
    out = notes / "imported" / "lib.jsonl"
    out.write_text(out.read_text() + '{"title": "half typed\n', encoding="utf-8")
    write(src, jsonl({"title": "Paper A"}, {"title": "Paper B"}))
    report = import_files([src], notes)
    text = out.read_text(encoding="utf-8")
    assert '{"title": "half typed\n' in text
    assert "Paper B" in text
    assert any("not valid JSON" in str(p) for p in report.files[0].problems)


# -- D8: two imports at once -----------------------------------------------------------------


def _import_process(library: Path, src: Path, pause: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PAPERS_LIBRARY": str(library)}
    env.pop("PAPERS_TEST_PAUSE_AT", None)
    if pause:
        # The first import stops for 2 s after choosing its output name, long enough
        # for the second to run meanwhile.
        env["PAPERS_TEST_PAUSE_AT"] = "import-named"
        env["PAPERS_TEST_PAUSE_SECONDS"] = "2"
    return subprocess.Popen(
        [sys.executable, "-c", "from search.faces.cli import main; main()", "import", str(src)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_imports_lose_no_papers(library: Path, tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "papers.jsonl", jsonl({"title": "Paper from A"}))
    b = write(tmp_path / "b" / "papers.jsonl", jsonl({"title": "Paper from B"}))
    first = _import_process(library, a, pause=True)
    assert first.stderr is not None
    assert first.stderr.readline().strip() == "PAUSED AT import-named"
    second = _import_process(library, b, pause=False)
    out2, err2 = second.communicate(timeout=60)
    out1, err1 = first.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    imported = library / "notes" / "imported"
    titles = sorted(o["title"] for f in imported.glob("*.jsonl") for o in read_objs(f))
    assert titles == ["Paper from A", "Paper from B"]
    assert "waiting for another import" in err2


# -- D15: BibTeX macros, logos, repeated fields --------------------------------------------------

MACRO_BIB = r"""@string{cvpr = "Computer Vision and Pattern Recognition"}
@String{conf = {Conf}}
@STRING{full = conf # " on Things"}

@inproceedings{k1,
  title = {On {\LaTeX} typesetting, \TeX{} and \BibTeX},
  booktitle = cvpr # " 2020",
  year = 2020,
  month = jan
}

@inproceedings{k2, title = {Plain reference}, booktitle = full}

@article{dup2020,
  title = {First title},
  title = {Second title}
}
"""


def test_bibtex_string_macros_are_expanded(tmp_path: Path) -> None:
    result = read_bibtex(write(tmp_path / "m.bib", MACRO_BIB), "m.bib")
    venues = {r.extra["id"]: r.venue for r in result.records}
    assert venues["k1"] == "Computer Vision and Pattern Recognition 2020"
    assert venues["k2"] == "Conf on Things"


def test_bibtex_tex_logos_are_kept(tmp_path: Path) -> None:
    result = read_bibtex(write(tmp_path / "m.bib", MACRO_BIB), "m.bib")
    titles = {r.extra["id"]: r.title for r in result.records}
    assert titles["k1"] == "On LaTeX typesetting, TeX and BibTeX"


def test_bibtex_repeated_field_names_the_entry(tmp_path: Path) -> None:
    result = read_bibtex(write(tmp_path / "m.bib", MACRO_BIB), "m.bib")
    [problem] = result.problems
    assert "'dup2020'" in problem.message and "title" in problem.message
    assert problem.line == MACRO_BIB.splitlines().index("@article{dup2020,") + 1
