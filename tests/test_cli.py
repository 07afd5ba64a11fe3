"""The command line end to end, with the fake encoder (logic, not meaning)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from search.faces.cli import cli

FAKE = ["--model", "fake"]


def run(*args: str, ok: bool = True) -> click.testing.Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result


def rebuild_fake(*extra: str) -> click.testing.Result:
    return run("rebuild", *FAKE, *extra)


def one_error_line(result: click.testing.Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_rebuild_reports_files_papers_chunks(seeded: Path) -> None:
    result = rebuild_fake()
    assert "indexed 1 files" in result.stderr
    assert "16 papers" in result.stderr
    report = json.loads(rebuild_fake("--json", "--full").stdout)
    assert report["papers"] == 16
    assert report["chunks"] >= 16
    assert report["files"] == 1


def test_ask_table_and_json(seeded: Path) -> None:
    rebuild_fake()
    table = run("ask", "dropout", "single", "image", "denoising", *FAKE).stdout
    assert "Self2Self" in table.splitlines()[1]
    assert "notes/cvpr2020.md:" in table
    hits = json.loads(run("ask", "denoising from single image", "--json", "-k", "3").stdout)
    assert len(hits) == 3
    top = hits[0]
    assert top["title"].startswith("Self2Self With Dropout")
    assert top["section"] == ["Misc"]
    assert top["where"].startswith("notes/cvpr2020.md:")
    assert top["note"].startswith("Simple trick")
    assert [h["rank"] for h in hits] == [1, 2, 3]


def test_ask_section_filter(seeded: Path) -> None:
    rebuild_fake()
    hits = json.loads(run("ask", "learning", "--section", "embedding", "--json").stdout)
    assert hits
    assert all(h["section"] == ["Embedding"] for h in hits)


def test_results_are_distinct_papers(seeded: Path) -> None:
    rebuild_fake()
    hits = json.loads(run("ask", "learning representation", "--json", "-k", "16").stdout)
    titles = [h["title"] for h in hits]
    assert len(titles) == len(set(titles))


def test_similar_excludes_itself(seeded: Path) -> None:
    rebuild_fake()
    result = run("similar", "Proxy Anchor Loss", "--json")
    hits = json.loads(result.stdout)
    assert "Proxy Anchor Loss for Deep Metric Learning" in result.stderr
    assert hits
    assert all(not h["title"].startswith("Proxy Anchor") for h in hits)


def test_similar_to_several_quoted_titles(seeded: Path) -> None:
    rebuild_fake()
    result = run("similar", "Proxy Anchor Loss", "Circle Loss", "--json")
    assert "Proxy Anchor Loss for Deep Metric Learning; Circle Loss" in result.stderr
    titles = [h["title"] for h in json.loads(result.stdout)]
    assert titles and not any(t.startswith(("Proxy Anchor", "Circle Loss")) for t in titles)
    # Unquoted words that name one paper together are still that one paper.
    one = run("similar", "Proxy", "Anchor", "Loss", "--json")
    assert "papers similar to: Proxy Anchor Loss for Deep Metric Learning\n" in one.stderr
    # Words that name nothing, together or apart: one line about the whole.
    missing = one_error_line(run("similar", "zebra", "quokka", ok=False))
    assert "zebra quokka" in missing


def test_similar_by_text_and_file(seeded: Path, tmp_path: Path) -> None:
    rebuild_fake()
    hits = json.loads(run("similar", "--text", "dropout denoising single image", "--json").stdout)
    assert hits[0]["title"].startswith("Self2Self")
    note = tmp_path / "mine.md"
    note.write_text("# My idea\n\nanomaly detection with student teacher embeddings\n")
    hits = json.loads(run("similar", "--file", str(note), "--json").stdout)
    assert hits[0]["title"].startswith("Uninformed Students")


def test_similar_needs_exactly_one_input(seeded: Path) -> None:
    rebuild_fake()
    result = run("similar", ok=False)
    assert result.exit_code == 2


def test_list_and_show(seeded: Path) -> None:
    rebuild_fake()
    listing = json.loads(run("list", "--json").stdout)
    assert len(listing) == 16
    assert all(p["sources"][0]["file"] == "notes/cvpr2020.md" for p in listing)
    text = run("list").stdout
    assert "notes/cvpr2020.md  (16 papers)" in text
    shown = json.loads(run("show", "Circle Loss", "--json").stdout)
    assert shown["title"].startswith("Circle Loss")
    assert "Dynamic similarity weighting" in run("show", "circle loss").stdout


def test_where_prints_paths(library: Path) -> None:
    data = json.loads(run("where", "--json").stdout)
    assert data["notes"] == str(library / "notes")


# -- errors: one line on stderr, non-zero exit ------------------------------------------------


def test_no_notes_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERS_LIBRARY", str(tmp_path / "nowhere"))
    line = one_error_line(run("rebuild", *FAKE, ok=False))
    assert "no notes folder" in line


def test_empty_notes_folder(library: Path) -> None:
    line = one_error_line(run("rebuild", *FAKE, ok=False))
    assert "no notes in" in line


def test_ask_before_rebuild(seeded: Path) -> None:
    line = one_error_line(run("ask", "anything", ok=False))
    assert "papers rebuild" in line


def test_unknown_model(seeded: Path) -> None:
    line = one_error_line(run("rebuild", "--model", "no-such/model-xyz", ok=False))
    assert "unknown model" in line
    assert "no-such/model-xyz" in line


def test_ask_with_another_model_says_rebuild(seeded: Path) -> None:
    rebuild_fake()
    line = one_error_line(run("ask", "x", "--model", "all-MiniLM-L6-v2", ok=False))
    assert "built with fake" in line
    assert "papers rebuild" in line


def test_unknown_title_lists_candidates(seeded: Path) -> None:
    rebuild_fake()
    line = one_error_line(run("similar", "Proxy Ankor Los Zebra Quantum", ok=False))
    assert "no paper titled" in line
    assert "closest" in line


def test_ambiguous_title(library: Path) -> None:
    (library / "notes" / "a.md").write_text(
        "# Papers\n\n* Deep Residual Learning A\n* Deep Residual Learning B\n"
    )
    rebuild_fake()
    line = one_error_line(run("similar", "Deep Residual Learning", ok=False))
    assert "several" in line
    assert "Deep Residual Learning A" in line and "Deep Residual Learning B" in line


def test_bad_files_are_skipped_rest_indexed(seeded: Path) -> None:
    notes = seeded / "notes"
    (notes / "latin1.md").write_bytes("* Caf\xe9 paper\n".encode("latin-1"))
    (notes / "binary.md").write_bytes(b"\x00\x01\x02garbage")
    result = rebuild_fake()
    assert "latin1.md" in result.stderr
    assert "binary.md" in result.stderr
    assert "16 papers" in result.stderr


def test_light_commands_do_not_import_torch(seeded: Path) -> None:
    rebuild_fake()
    code = (
        "import sys\n"
        "from search.faces.cli import cli\n"
        "for args in (['--help'], ['list'], ['list', '--json'], ['ask', '--help']):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEAVY []" in out


def test_every_command_has_help() -> None:
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help"
        result = run(name, "--help")
        assert "Usage:" in result.stdout
    assert "Examples:" in run("--help").stdout
    assert "papers" in run("--version").stdout


def test_similar_file_from_stdin(seeded: Path) -> None:
    rebuild_fake()
    result = CliRunner().invoke(
        cli, ["similar", "--file", "-", "--json"], input="dropout denoising single image\n"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["title"].startswith("Self2Self")


def test_commands_that_encode_nothing_ignore_another_model(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuild_fake()
    monkeypatch.setenv("PAPERS_MODEL", "all-MiniLM-L6-v2")
    assert "Circle Loss" in run("show", "Circle Loss").stdout
    assert "Circle Loss" in run("ask", "circle loss", "--mode", "keyword").stdout
    line = one_error_line(run("ask", "circle loss", ok=False))
    assert "built with fake" in line


def test_import_of_a_file_with_no_papers_fails_and_writes_nothing(
    library: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.bib"
    empty.write_text("% nothing here\n")
    line = one_error_line(run("import", str(empty), ok=False))
    assert "no paper could be read" in line
    assert not (library / "notes" / "imported" / "empty.jsonl").exists()
