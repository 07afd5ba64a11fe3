"""Hostile input, round two (issue 24): names and paths from outside, damaged indexes, input
that costs without bound, MCP requests that are not JSON-RPC. Each case is one clear line (or
the right result), no traceback, and nothing indexed before is lost."""

from __future__ import annotations

import os
from pathlib import Path

from search.store import Index

from .test_cli import rebuild_fake


def titles(library: Path) -> list[str]:
    idx = Index.open(library / "index")
    try:
        return sorted(p.title for p in idx.all_papers())
    finally:
        idx.close()


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
