"""D2: an arXiv id or DOI that is not in the library is an error naming it, never a fuzzy
match on a title that happens to contain "arXiv" or digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_cli import one_error_line, rebuild_fake, run

NOTES = """# Reading list

- Tricks for arXiv 2101 papers: a survey
  > a note on it
- Deep Residual Learning [[arXiv](https://arxiv.org/abs/1512.03385)]
- Paper with a DOI
"""


@pytest.fixture
def library_with_ids(library: Path) -> Path:
    (library / "notes" / "list.md").write_text(NOTES, encoding="utf-8")
    (library / "notes" / "more.jsonl").write_text(
        json.dumps({"title": "Paper with a DOI", "doi": "10.1234/abc.5678"}) + "\n",
        encoding="utf-8",
    )
    rebuild_fake()
    return library


MISSING = [
    ("arxiv:2101.99999", "2101.99999"),
    ("2101.99999", "2101.99999"),
    ("arXiv:2101.99999v2", "2101.99999"),
    ("https://arxiv.org/abs/2101.99999", "2101.99999"),
    ("hep-th/9901001", "hep-th/9901001"),
    ("10.9999/nothing.here", "10.9999/nothing.here"),
    ("doi:10.9999/nothing.here", "10.9999/nothing.here"),
    ("https://doi.org/10.9999/NOTHING.here", "10.9999/nothing.here"),
]


@pytest.mark.parametrize("command", ["similar", "show"])
@pytest.mark.parametrize(("query", "named"), MISSING)
def test_missing_id_is_an_error_naming_it(
    library_with_ids: Path, command: str, query: str, named: str
) -> None:
    result = run(command, query, ok=False)
    line = one_error_line(result)
    assert named in line.lower()
    assert "not in the library" in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    "query",
    ["arxiv:1512.03385", "1512.03385", "https://arxiv.org/abs/1512.03385v3"],
)
def test_present_arxiv_id_is_found(library_with_ids: Path, query: str) -> None:
    shown = json.loads(run("show", query, "--json").stdout)
    assert shown["title"] == "Deep Residual Learning"


@pytest.mark.parametrize("query", ["10.1234/ABC.5678", "https://doi.org/10.1234/abc.5678"])
def test_present_doi_is_found(library_with_ids: Path, query: str) -> None:
    shown = json.loads(run("show", query, "--json").stdout)
    assert shown["title"] == "Paper with a DOI"
