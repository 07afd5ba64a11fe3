"""The page a person reads: notes as sanitised Markdown, everything linkable linked, a home
page with a count and papers to browse, note files readable at their line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.api import Library
from tests.test_cli import rebuild_fake

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from search.faces.web.app import create_app  # noqa: E402
from search.faces.web.render import note_html  # noqa: E402

# A JSON-lines note keeps its Markdown as written (the Markdown reader flattens its own).
RICH = {
    "title": "Denoising Diffusion Probabilistic Models",
    "note": "**Key idea**: learn to reverse a *noising* process. Code at "
    "https://github.com/hojonathanho/diffusion\n\n- forward: add Gaussian noise\n"
    "- reverse: predict the noise\n\n"
    '<script>alert("x")</script> [bad](javascript:alert(1)) and `eps_theta(x_t, t)`',
}


@pytest.fixture
def client(library: Path) -> Iterator[TestClient]:
    (library / "notes" / "rich.jsonl").write_text(json.dumps(RICH) + "\n", encoding="utf-8")
    rebuild_fake()
    with Library(library, model="fake") as lib:
        yield TestClient(create_app(lib), base_url="http://127.0.0.1:8765")


def test_note_html_renders_markdown_and_drops_scripts() -> None:
    html = str(note_html("**bold** and a list:\n\n- one\n- two\n\nsee https://example.org/x"))
    assert "<strong>bold</strong>" in html and "<li>one</li>" in html
    assert '<a href="https://example.org/x"' in html and 'rel="noopener noreferrer"' in html
    bad = str(note_html("<script>alert(1)</script><img src=x onerror=alert(1)> [a](javascript:x)"))
    # shown as text, never as elements or links
    assert "<script" not in bad and "<img" not in bad and 'href="javascript' not in bad


def test_paper_page_renders_the_note_and_links_everything(client: TestClient) -> None:
    html = client.get("/paper/Denoising Diffusion Probabilistic Models").text
    assert "<strong>Key idea</strong>" in html and "<li>forward: add Gaussian noise</li>" in html
    assert '<a href="https://github.com/hojonathanho/diffusion"' in html
    assert "<script>alert" not in html and 'href="javascript' not in html
    assert "**Key idea**" not in html
    # the place it is noted is a link to the note file at that line
    assert re.search(r'<a [^>]*href="/note/notes/rich\.jsonl#L1"', html), html


def test_note_files_are_served_with_line_anchors_and_only_under_notes(
    client: TestClient, library: Path
) -> None:
    page = client.get("/note/notes/rich.jsonl")
    assert page.status_code == 200 and 'id="L1"' in page.text
    (library / "secret.txt").write_text("no", encoding="utf-8")
    for bad in ("/note/secret.txt", "/note/notes/../secret.txt", "/note/notes/missing.md"):
        assert client.get(bad).status_code == 404, bad


def test_home_page_has_a_count_and_papers_to_browse(client: TestClient) -> None:
    html = client.get("/").text
    assert "1 paper in your notes" in html
    assert 'href="/paper/' in html and "Denoising Diffusion Probabilistic Models" in html
