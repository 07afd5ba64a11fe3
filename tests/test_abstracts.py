"""Abstracts end to end: import, join with notes, and find papers by what only abstracts say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.faces.cli import cli

from .conftest import SEED, shared_data


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_cvpr2021_import_gives_1660_papers_with_abstracts(library: Path) -> None:
    src = shared_data("cvpr2021") / "papers.jsonl"
    run("import", str(src))
    run("rebuild", "--model", "fake")
    listing = json.loads(run("list", "--json"))
    assert len(listing) == 1660
    some = json.loads(run("show", listing[100]["id"], "--json"))
    assert len(some["abstract"]) > 200
    assert all(p["sources"][0]["file"] == "notes/imported/papers.jsonl" for p in listing)


def test_note_and_imported_abstract_join_under_a_variant_title(
    seeded: Path, tmp_path: Path
) -> None:
    src = tmp_path / "mine.jsonl"
    src.write_text(
        json.dumps(
            {
                "title": "self2self with dropout -- learning self-supervised denoising "
                "from single image",
                "abstract": "We propose a self-supervised learning method that only uses the "
                "input noisy image itself for training, with Bernoulli-sampled instances.",
                "year": 2020,
            }
        )
        + "\n"
    )
    run("import", str(src))
    run("rebuild", "--model", "fake")
    listing = json.loads(run("list", "--json"))
    assert len(listing) == 16
    paper = json.loads(run("show", "Self2Self", "--json"))
    assert paper["note"].startswith("Simple trick")
    assert "Bernoulli-sampled" in paper["abstract"]
    assert {s["file"] for s in paper["sources"]} == {
        "notes/cvpr2020.md",
        "notes/imported/mine.jsonl",
    }


@pytest.mark.model
def test_ask_finds_papers_by_abstract_only_content(library: Path, tmp_path: Path) -> None:
    # A slice of CVPR 2021 (the real model on 1,660 abstracts takes minutes on 2 cores).
    src = shared_data("cvpr2021") / "papers.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()[:40]]
    part = tmp_path / "cvpr2021-part.jsonl"
    part.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    shutil.copy(SEED, library / "notes" / "cvpr2020.md")
    run("import", str(part))
    run("rebuild")
    found = 0
    for row in rows[:10]:
        # Ask with the abstract's own middle sentence, which the title does not contain.
        sentences = [s for s in row["abstract"].split(". ") if len(s.split()) > 8]
        question = sentences[len(sentences) // 2]
        hits = json.loads(run("ask", question, "--json", "-k", "3"))
        found += any(h["title"] == " ".join(row["title"].split()) for h in hits)
    assert found >= 9, found
