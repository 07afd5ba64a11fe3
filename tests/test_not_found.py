"""A title that is not in the library is "not found", not "ambiguous" among unrelated titles:
in the library, on the command line and on the web page (MCP calls the same `show`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.api import Library
from search.errors import Ambiguous, NotFound
from tests.test_cli import one_error_line, rebuild_fake, run

ABSENT = [
    "Unsupervised Learning of Visual Features",
    "Deep Residual Learning for Image Recognition",
    "Learning Transferable Visual Models",
    "Attention Is All You Need",
]


@pytest.mark.parametrize("title", ABSENT)
def test_absent_title_is_not_found_and_names_no_unrelated_title(seeded: Path, title: str) -> None:
    rebuild_fake()
    with Library(seeded) as lib, pytest.raises(NotFound) as e:
        lib.show(title)
    assert str(e.value).startswith(f'no paper titled "{title}"')
    # "closest" titles share a word with what was asked: none for a title sharing none
    if title == "Attention Is All You Need":
        assert "closest" not in str(e.value)


def test_related_titles_are_still_ambiguous_and_loose_matches_still_found(seeded: Path) -> None:
    rebuild_fake()
    with Library(seeded) as lib:
        with pytest.raises(Ambiguous):
            lib.show("Knowledge Distillation")
        assert lib.show("Proxy Anchr Loss").title.startswith("Proxy Anchor Loss")
        assert lib.show("circle loss unified perspective").title.startswith("Circle Loss")


def test_cli_and_web_say_not_found(seeded: Path) -> None:
    rebuild_fake()
    line = one_error_line(run("show", ABSENT[0], ok=False))
    assert "no paper titled" in line and "several" not in line
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from search.faces.web.app import create_app

    with Library(seeded) as lib:
        client = TestClient(create_app(lib), base_url="http://127.0.0.1:8765")
        assert client.get("/api/similar", params={"paper": ABSENT[1]}).status_code == 404
