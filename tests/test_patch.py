"""A rebuild after a few files changed patches a copy of the previous generation (only the
papers those files touch are merged again, every other row is kept as it is): the index it
gives must be the one a rebuild from scratch gives, whatever the change."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search import build
from search.build import RebuildReport, rebuild
from search.library import library_paths
from search.storage import patch, vectors
from search.storage.store import Index


def write(path: Path, text: str) -> None:
    """Write and move mtime forward, so a same-size edit within one clock tick is still seen."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))


def bullets(*titles: str, body: str = "my notes") -> str:
    return "".join(f"* {t}\n> {body} on {t.lower()}\n\n" for t in titles)


ARXIV = {
    "Attention Is All You Need": "1706.03762",
    "Batch Normalization Accelerates Training": "1502.03167",
    "Semi-Supervised Classification with Graph Convolutional Networks": "1609.02907",
    "Graph Attention Networks": "1710.10903",
}


def linked(*titles: str) -> str:
    """List entries linking their arXiv page (evidence that the list is one of papers)."""
    return "".join(
        f"* [{t}](https://arxiv.org/abs/{ARXIV[t]})\n> my notes on {t.lower()}\n\n" for t in titles
    )


def jsonl(*rows: dict[str, str]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def snapshot(root: Path) -> dict[str, Any]:
    """Everything an index holds, keyed by paper id rather than by row number (a patch numbers
    new papers after the old ones; a rebuild from scratch in order of first mention)."""
    idx = Index.open(root / "index")
    try:
        ids = dict(idx.query("SELECT pid, id FROM papers"))
        out: dict[str, Any] = {
            "papers": sorted(
                idx.query(
                    "SELECT id, title, norm_title, section, arxiv, doi, url, authors, year, "
                    "venue, tags, abstract, notes, text_hash FROM papers"
                )
            ),
            "sources": sorted(
                (ids[r[0]], *r[1:])
                for r in idx.query("SELECT pid, ord, file, line, section, note FROM sources")
            ),
            "aliases": sorted(
                (ids[r[0]], *r[1:]) for r in idx.query("SELECT pid, alias, norm FROM aliases")
            ),
            "keywords": sorted(
                (ids[r[0]], *r[1:]) for r in idx.query("SELECT rowid, title, body FROM papers_fts")
            ),
            "records": sorted(
                (f, pos, ids[pid]) for f, pos, pid in idx.query("SELECT * FROM paper_records")
            ),
            "merge_keys": sorted((k, ids[pid]) for k, pid in idx.query("SELECT * FROM merge_keys")),
            "files": sorted(
                idx.query("SELECT path, records, problems, sha256, reading FROM files")
            ),
            "counts": (idx.manifest["papers"], idx.manifest["chunks"]),
        }
        # bm25 depends on table-wide statistics, which deletes must keep exact
        for word in ("notes", "residual", "graph", "transformer"):
            out[f"bm25 {word}"] = sorted(
                (ids[rowid], round(score, 6))
                for rowid, score in idx.query(
                    "SELECT rowid, bm25(papers_fts) FROM papers_fts WHERE papers_fts MATCH ?",
                    (word,),
                )
            )
        chunks = idx.query("SELECT vid, pid, ord, key, text, file, page FROM chunks")
        out["chunks"] = sorted((ids[pid], o, k, t, f, pg) for _v, pid, o, k, t, f, pg in chunks)
        vids = [c[0] for c in chunks]
        assert len(vids) == int(idx.vectors.ntotal)
        got = vectors.reconstruct(idx.vectors, vids) if vids else np.zeros((0, 0))
        out["vectors"] = {
            (ids[c[1]], c[2]): np.round(v, 5).tolist() for c, v in zip(chunks, got, strict=True)
        }
        return out
    finally:
        idx.close()


def report_counts(r: RebuildReport) -> dict[str, Any]:
    # files_parsed is left out: a copy of a library has new inodes and ctimes, so its parse
    # cache is not trusted and every file is read again (the index it builds is the same).
    skip = {"seconds", "files_parsed"}
    return {k: v for k, v in dataclasses.asdict(r).items() if k not in skip}


@pytest.fixture
def patches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the rebuilds that patched the previous generation. In a library this small a
    change touches more than patch.PATCH_AT_MOST of the papers, which in a large one goes the
    whole way instead: here every change is patched."""
    monkeypatch.setattr(patch, "PATCH_AT_MOST", 1.0)
    calls: list[int] = []
    real = build.patch_generation

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "patch_generation", spy)
    return calls


def check_against_scratch(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> RebuildReport:
    """Rebuild `library` (a patch), the same library and index through the full path, and
    its notes alone from scratch: the patch must report what the full path reports and hold
    what the rebuild from scratch holds."""
    twin = tmp_path / f"twin-{step}"
    shutil.copytree(library, twin, symlinks=True)
    patched = rebuild(library_paths(library), model="fake")
    with monkeypatch.context() as m:
        m.setattr(build, "plan_patch", lambda *args: None)
        whole = rebuild(library_paths(twin), model="fake")
    assert report_counts(patched) == report_counts(whole), step
    scratch = tmp_path / f"scratch-{step}"
    shutil.copytree(library / "notes", scratch / "notes", symlinks=True)
    rebuild(library_paths(scratch), model="fake")
    mine, theirs = snapshot(library), snapshot(scratch)
    for key in theirs:
        assert mine[key] == theirs[key], f"{step}: {key} differs"
    return patched


RESNET = "Deep Residual Learning for Image Recognition"
GCN = "Semi-Supervised Classification with Graph Convolutional Networks"


@pytest.fixture
def notes(library: Path) -> Path:
    notes = library / "notes"
    write(
        notes / "list.md",
        "# Reading list\n\n## Vision\n\n"
        f"* [{RESNET}](resnet.md)\n"
        + linked("Attention Is All You Need", "Batch Normalization Accelerates Training")
        + "## Graphs\n\n"
        + linked(GCN, "Graph Attention Networks"),
    )
    write(notes / "resnet.md", f"# {RESNET}\n\nResidual blocks let very deep nets train.\n")
    write(
        notes / "more.md",
        "# More\n\n" + bullets("Transformer for Vision", "Neural Ordinary Differential Equations"),
    )
    write(
        notes / "refs.jsonl",
        jsonl(
            {"title": GCN, "abstract": "A graph convolution for node classification."},
            {"title": "Adam: A Method for Stochastic Optimization", "abstract": "Moments."},
            {"title": "Dropout", "abstract": "Randomly drop units while training."},
        ),
    )
    first = rebuild(library_paths(library), model="fake")
    assert first.papers == 9
    return notes


def test_patch_gives_the_index_a_rebuild_from_scratch_gives(
    notes: Path,
    library: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    patches: list[int],
) -> None:
    steps: list[tuple[str, Callable[[], None]]] = [
        # one note's text changes: one paper, one chunk
        (
            "edit",
            lambda: write(
                notes / "more.md",
                "# More\n\n"
                + bullets(
                    "Transformer for Vision",
                    "Neural Ordinary Differential Equations",
                    body="changed",
                ),
            ),
        ),
        # a new file mentions a paper of another file: the two mentions join
        (
            "join",
            lambda: write(
                notes / "extra.md",
                "# Extra\n\n"
                + bullets("attention is all you need", "Graph Attention Networks", "A new paper"),
            ),
        ),
        # the mention's title changes: they split again
        (
            "split",
            lambda: write(
                notes / "extra.md",
                "# Extra\n\n"
                + bullets(
                    "Attention Is Not All You Need", "Graph Attention Networks", "A new paper"
                ),
            ),
        ),
        # a data file goes: its papers go, a paper it shared with a list stays (its abstract
        # goes)
        ("remove", lambda: (notes / "refs.jsonl").unlink()),
        # the note a bullet links to goes, then comes back
        ("unlink", lambda: (notes / "resnet.md").unlink()),
        ("relink", lambda: write(notes / "resnet.md", f"# {RESNET}\n\nIdentity shortcuts.\n")),
        # a paper renamed where it is the only mention: a new id
        (
            "rename",
            lambda: write(
                notes / "more.md",
                "# More\n\n"
                + bullets(
                    "Vision Transformer", "Neural Ordinary Differential Equations", body="changed"
                ),
            ),
        ),
        # a new data file whose records join papers of two lists at once
        (
            "bridge",
            lambda: write(
                notes / "sub" / "abstracts.jsonl",
                jsonl(
                    {"title": GCN, "abstract": "Spectral graph convolutions, first order."},
                    {"title": "A new paper", "abstract": "Brand new."},
                    {"title": "Vision Transformer", "abstract": "Patches as tokens."},
                ),
            ),
        ),
        # a section moves within a list: sections and lines of its papers change
        (
            "move",
            lambda: write(
                notes / "list.md",
                "# Reading list\n\n## Graphs\n\n"
                + bullets(GCN, "Graph Attention Networks")
                + "## Vision\n\n"
                f"* [{RESNET}](resnet.md)\n"
                + bullets("Attention Is All You Need", "Batch Normalization Accelerates Training"),
            ),
        ),
    ]
    for step, change in steps:
        change()
        before = len(patches)
        report = check_against_scratch(library, tmp_path, monkeypatch, step)
        assert len(patches) == before + 1, f"{step}: not patched"
        assert not report.nothing_changed
    # the patched generation is whole: --verify re-hashes every note and finds nothing to do
    verified = rebuild(library_paths(library), model="fake", verify=True)
    assert verified.nothing_changed


def test_an_edit_keeps_the_order_of_papers(notes: Path, library: Path, patches: list[int]) -> None:
    def order() -> list[str]:
        idx = Index.open(library / "index")
        try:
            return [p.title for p in idx.all_papers()]
        finally:
            idx.close()

    before = order()
    write(
        notes / "list.md",
        (notes / "list.md")
        .read_text()
        .replace("my notes on attention", "other notes on attention"),
    )
    report = rebuild(library_paths(library), model="fake")
    assert patches and report.papers_changed == 1 and report.chunks_embedded == 1
    assert order() == before


def test_an_index_without_record_tables_is_rebuilt_whole_once(
    notes: Path, library: Path, patches: list[int]
) -> None:
    # An index built before paper_records/merge_keys existed: the next rebuild merges all.
    idx = Index.open(library / "index")
    gen = idx.gen
    idx.close()
    import sqlite3

    from search.storage import store

    db = sqlite3.connect(gen / store.DB_NAME)
    db.execute("DROP TABLE paper_records")
    db.commit()
    db.close()
    sums = json.loads((gen / store.CHECKSUMS).read_text())
    for name in store.FILES:
        sums[name] = {
            "bytes": (gen / name).stat().st_size,
            "crc32": store.file_checksum(gen / name),
        }
    (gen / store.CHECKSUMS).write_text(json.dumps(sums))
    write(notes / "more.md", "# More\n\n" + bullets("Transformer for Vision"))
    report = rebuild(library_paths(library), model="fake")
    assert not patches and report.papers_removed == 1
    write(notes / "more.md", "# More\n\n" + bullets("Transformer for Vision", "Back again"))
    rebuild(library_paths(library), model="fake")
    assert len(patches) == 1


def test_papers_that_would_share_an_id_are_merged_whole(
    notes: Path,
    library: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    patches: list[int],
) -> None:
    # Titles with no words share one id, numbered in order of first mention (x, x-2): a new
    # such paper in a file read before the old one's renumbers both, which a patch cannot do.
    write(notes / "z.jsonl", jsonl({"title": "!!!", "abstract": "one"}))
    check_against_scratch(library, tmp_path, monkeypatch, "first twin")
    assert len(patches) == 1
    write(notes / "a.jsonl", jsonl({"title": "???", "abstract": "two"}))
    check_against_scratch(library, tmp_path, monkeypatch, "second twin")
    assert len(patches) == 1
