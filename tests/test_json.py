"""The `--json` shapes are an interface: their keys are pinned here (docs/json.md lists them)."""

from __future__ import annotations

import json
from pathlib import Path

from search.faces.output import fetch_json
from search.readers.fetch import FetchItem, FetchReport

from .test_cli import rebuild_fake, run

SOURCE_KEYS = {"file", "line"}
HIT_KEYS = {
    "rank",
    "score",
    "relevance",
    "id",
    "title",
    "section",
    "note",
    "abstract",
    "arxiv",
    "doi",
    "url",
    "sources",
    "where",
    "page",
    "page_file",
    "cite",
    "explain",
}
SHOW_KEYS = {
    "id",
    "title",
    "section",
    "authors",
    "year",
    "venue",
    "tags",
    "note",
    "notes",
    "abstract",
    "arxiv",
    "doi",
    "url",
    "sources",
    "where",
}
REBUILD_KEYS = {
    "files",
    "files_parsed",
    "problems",
    "papers",
    "chunks",
    "papers_added",
    "papers_changed",
    "papers_removed",
    "papers_unchanged",
    "chunks_added",
    "chunks_changed",
    "chunks_removed",
    "chunks_unchanged",
    "chunks_embedded",
    "reembed_reason",
    "shrunk",
    "nothing_changed",
    "model",
    "seconds",
}


def test_hit_keys(seeded: Path) -> None:
    rebuild_fake()
    for args in (
        ("ask", "metric learning"),
        ("ask", "metric learning", "--mode", "keyword"),
        ("similar", "Circle Loss"),
        ("similar", "--text", "dropout denoising"),
    ):
        hits = json.loads(run(*args, "--json", "-k", "2").stdout)
        assert hits, args
        for h in hits:
            assert set(h) == HIT_KEYS, args
            assert {s for src in h["sources"] for s in src} == SOURCE_KEYS
            assert set(h["explain"]) <= {"semantic", "keyword", "found_by", "terms"}
            assert {"found_by", "terms"} <= set(h["explain"])
            for name in ("semantic", "keyword"):
                if name in h["explain"]:
                    assert set(h["explain"][name]) == {"rank", "score"}


def test_show_is_a_paper_not_a_hit(seeded: Path) -> None:
    (seeded / "notes" / "more.md").write_text(
        "---\ntitle: A Paper With Metadata\nauthors: [Ada Lovelace, Alan Turing]\nyear: 2021\n"
        "venue: CVPR\ntags: [vision]\n---\nMy note about it.\n",
        encoding="utf-8",
    )
    rebuild_fake()
    shown = json.loads(run("show", "A Paper With Metadata", "--json").stdout)
    assert set(shown) == SHOW_KEYS
    assert shown["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert (shown["year"], shown["venue"], shown["tags"]) == (2021, "CVPR", ["vision"])
    assert shown["where"] == "notes/more.md:1"


def test_list_rebuild_where_keys(seeded: Path) -> None:
    report = json.loads(rebuild_fake("--json").stdout)
    assert set(report) == REBUILD_KEYS
    listing = json.loads(run("list", "--json").stdout)
    assert all(set(p) == {"id", "title", "section", "sources"} for p in listing)
    assert set(json.loads(run("where", "--json").stdout)) == {"library", "notes", "index"}


def test_import_keys(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "lib.jsonl"
    src.write_text('{"title": "One"}\nnot json\n', encoding="utf-8")
    data = json.loads(run("import", str(src), "--json").stdout)
    assert set(data) == {"files"}
    (item,) = data["files"]
    assert set(item) == {
        "name",
        "written",
        "read",
        "written_records",
        "problems",
        "message",
        "edits_kept",
        "added",
        "removed",
    }
    assert item["written"].endswith("imported/lib.jsonl")
    assert all(isinstance(p, str) for p in item["problems"]) and item["problems"]


def test_fetch_keys(tmp_path: Path) -> None:
    report = FetchReport("arxiv", tmp_path / "abstracts.jsonl", found=1)
    report.items.append(FetchItem("A Title", "found", 99.0, "A Title"))
    data = fetch_json(report)
    assert set(data) == {
        "source",
        "out_path",
        "without_abstract",
        "already_done",
        "looked_up",
        "found",
        "not_found",
        "errors",
        "items",
    }
    assert data["out_path"] == str(tmp_path / "abstracts.jsonl")
    assert data["items"] == [
        {
            "title": "A Title",
            "status": "found",
            "score": 99.0,
            "matched_title": "A Title",
            "message": "",
        }
    ]


def test_list_files_keys(library: Path) -> None:
    (library / "notes" / "list.md").write_text("- Some Paper\n- Other Paper\n", encoding="utf-8")
    run("rebuild", "--model", "fake")
    [row] = json.loads(run("list", "--files", "--json").stdout)
    assert set(row) == {"file", "reading", "reason", "papers", "unsure"}
    assert row["file"] == "notes/list.md" and row["papers"] == 2
