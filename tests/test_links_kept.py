"""Links survive `import` and `catalog add`: page_url, pdf_url and OpenAlex's locations."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.test_cli import run

LINES = [
    {
        "title": "Paper With A Page",
        "abstract": "a",
        "page_url": "https://example.org/p/1",
        "pdf_url": "https://example.org/p/1.pdf",
    },
    {"title": "Paper With Only A PDF", "abstract": "b", "pdf_url": "https://example.org/2.pdf"},
    {
        "display_name": "An OpenAlex Work",
        "abstract": "c",
        "primary_location": {"landing_page_url": "https://doi.org/10.1/xyz", "pdf_url": None},
    },
]
WANT = {
    "Paper With A Page": "https://example.org/p/1",
    "Paper With Only A PDF": "https://example.org/2.pdf",
    "An OpenAlex Work": "https://doi.org/10.1/xyz",
}


def write(tmp_path: Path) -> Path:
    src = tmp_path / "papers.jsonl"
    src.write_text("\n".join(json.dumps(o) for o in LINES) + "\n", encoding="utf-8")
    return src


def test_import_keeps_page_and_pdf_links(library: Path, tmp_path: Path) -> None:
    run("import", str(write(tmp_path)))
    written = [
        json.loads(line)
        for f in (library / "notes" / "imported").glob("*.jsonl")
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    urls = {o["title"]: o.get("url") for o in written}
    assert urls["Paper With A Page"] == WANT["Paper With A Page"]
    assert urls["Paper With Only A PDF"] == WANT["Paper With Only A PDF"]


def test_catalog_add_keeps_links(library: Path, tmp_path: Path) -> None:
    run("catalog", "add", str(write(tmp_path)))
    with sqlite3.connect(library / "catalog" / "catalog.sqlite") as db:
        urls = dict(db.execute("SELECT title, url FROM papers"))
    assert urls == WANT
