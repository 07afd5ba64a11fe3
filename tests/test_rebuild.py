"""Incremental rebuilds: what is parsed, embedded, kept and removed, and what is reported."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from search.build import RebuildReport, rebuild
from search.encoders import index_encoder
from search.encoders.encoder import Encoder
from search.library import library_paths
from search.readers import incremental
from search.storage import vectors
from search.storage.store import Index

from .conftest import FakeEncoder
from .test_cli import rebuild_fake


def note(title: str, body: str = "") -> str:
    return f"* {title}\n> {body or 'notes about ' + title}\n\n"


def write(path: Path, text: str) -> None:
    """Write and move mtime forward, so a same-size edit within one clock tick is still seen."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))


def build_fake(full: bool = False) -> RebuildReport:
    return rebuild(library_paths(), model="fake", full=full)


def invariant(before: RebuildReport | None, r: RebuildReport) -> None:
    assert r.chunks == r.chunks_unchanged + r.chunks_changed + r.chunks_added
    assert r.chunks_embedded == r.chunks_changed + r.chunks_added
    assert r.papers == r.papers_unchanged + r.papers_changed + r.papers_added
    if before is not None:
        old = before.chunks
        assert old == r.chunks_unchanged + r.chunks_changed + r.chunks_removed
        assert before.papers == r.papers_unchanged + r.papers_changed + r.papers_removed


def consistent(library: Path) -> None:
    """Every chunk row has exactly one vector and the reverse."""
    idx = Index.open(library / "index")
    try:
        vids = sorted(v for (v,) in idx.query("SELECT vid FROM chunks"))
        assert len(vids) == int(idx.vectors.ntotal) == idx.manifest["chunks"]
        got = vectors.reconstruct(idx.vectors, vids)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    finally:
        idx.close()


@pytest.fixture
def two_files(library: Path) -> Path:
    notes = library / "notes"
    write(notes / "a.md", "# A\n\n" + "".join(note(f"Alpha paper {i}") for i in range(5)))
    write(notes / "b.md", "# B\n\n" + "".join(note(f"Beta paper {i}") for i in range(3)))
    return notes


def test_first_build_then_nothing_changed(two_files: Path, library: Path) -> None:
    r1 = build_fake()
    assert (r1.papers, r1.papers_added, r1.files_parsed) == (8, 8, 2)
    invariant(None, r1)
    r2 = build_fake()
    assert r2.nothing_changed
    assert r2.files_parsed == 0
    assert (r2.papers_unchanged, r2.chunks_unchanged, r2.chunks_embedded) == (8, r1.chunks, 0)
    consistent(library)


def test_edit_add_delete_papers(two_files: Path, library: Path) -> None:
    r1 = build_fake()
    text = (two_files / "a.md").read_text()
    text = text.replace("notes about Alpha paper 1", "entirely new thoughts on paper one")
    text = text.replace(note("Alpha paper 3"), "")  # deleted
    text += note("Gamma paper new")  # added
    write(two_files / "a.md", text)
    r2 = build_fake()
    assert r2.files_parsed == 1  # b.md comes from the cache
    assert (r2.papers_added, r2.papers_changed, r2.papers_removed) == (1, 1, 1)
    assert r2.papers_unchanged == 6
    assert r2.chunks_changed == 1
    assert r2.chunks_added == 1
    assert r2.chunks_removed == 1
    assert r2.chunks_embedded == 2
    invariant(r1, r2)
    consistent(library)


def test_delete_and_add_files(two_files: Path, library: Path) -> None:
    r1 = build_fake()
    (two_files / "b.md").unlink()
    write(two_files / "c.md", note("Gamma one") + note("Gamma two"))
    r2 = build_fake()
    assert r2.files == 2 and r2.files_parsed == 1
    assert (r2.papers_added, r2.papers_removed, r2.papers_unchanged) == (2, 3, 5)
    assert (r2.chunks_added, r2.chunks_removed, r2.chunks_changed) == (2, 3, 0)
    invariant(r1, r2)
    consistent(library)
    titles = {t for _pid, t, *_ in Index.open(library / "index").titles()}
    assert "Gamma one" in titles and "Beta paper 0" not in titles


def test_moved_paper_keeps_its_vector(two_files: Path, library: Path) -> None:
    """A paper moved to another file (same text) is not embedded again."""
    build_fake()
    a = (two_files / "a.md").read_text()
    write(two_files / "a.md", a.replace(note("Alpha paper 4"), ""))
    write(two_files / "b.md", (two_files / "b.md").read_text() + note("Alpha paper 4"))
    r = build_fake()
    assert r.chunks_embedded == 0 and r.papers_removed == 0
    consistent(library)


def test_touch_without_change_reparses_but_embeds_nothing(two_files: Path) -> None:
    build_fake()
    st = (two_files / "a.md").stat()
    os.utime(two_files / "a.md", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = build_fake()
    assert not r.nothing_changed
    assert r.files_parsed == 1
    assert r.chunks_embedded == 0 and r.papers_unchanged == 8


def test_full_reembeds_everything(two_files: Path, library: Path) -> None:
    r1 = build_fake()
    r2 = build_fake(full=True)
    assert r2.reembed_reason == "--full"
    assert r2.chunks_embedded == r1.chunks
    assert r2.files_parsed == 2
    consistent(library)


def test_settings_change_reembeds_with_reason(
    two_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r1 = build_fake()
    monkeypatch.setattr("search.encoders.index_encoder.CHUNKING_VERSION", 999)
    r2 = build_fake()
    assert r2.reembed_reason and "chunking_version" in r2.reembed_reason
    assert r2.chunks_embedded == r1.chunks


def test_model_change_reembeds_with_reason(
    two_files: Path, encoders: Callable[[str, Callable[[], Encoder]], None]
) -> None:
    encoders("fake2", FakeEncoder)
    r1 = build_fake()
    r2 = rebuild(library_paths(), model="fake2")
    assert r2.reembed_reason == "the model changed (fake → fake2)"
    assert r2.chunks_embedded == r1.chunks


def test_parser_change_reparses_without_reembedding(
    two_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_fake()
    monkeypatch.setattr(incremental, "parser_version", lambda: "another")
    r = build_fake()
    assert r.files_parsed == 2 and r.chunks_embedded == 0 and r.reembed_reason is None


def test_cli_json_report(two_files: Path) -> None:
    report = json.loads(rebuild_fake("--json").stdout)
    for key in (
        "papers_added",
        "papers_changed",
        "papers_removed",
        "papers_unchanged",
        "chunks_added",
        "chunks_changed",
        "chunks_removed",
        "chunks_unchanged",
        "chunks_embedded",
        "seconds",
        "files_parsed",
        "reembed_reason",
    ):
        assert key in report
    again = json.loads(rebuild_fake("--json").stdout)
    assert again["nothing_changed"] and again["papers_unchanged"] == 8


def test_long_note_is_chunked_and_chunks_are_reused(library: Path) -> None:
    """A paper longer than the window gets several chunks; editing its end re-embeds only the
    chunks that changed."""
    words = " ".join(f"w{i}" for i in range(400))
    write(library / "notes" / "long.md", note("Long paper", words) + note("Short paper"))
    r1 = build_fake()
    assert r1.chunks > 5
    write(library / "notes" / "long.md", note("Long paper", words + " tail") + note("Short paper"))
    r2 = build_fake()
    assert r2.papers_changed == 1
    assert 1 <= r2.chunks_embedded < r1.chunks // 2
    invariant(r1, r2)
    consistent(library)


def test_large_library_switches_to_ivf(monkeypatch: pytest.MonkeyPatch, library: Path) -> None:
    """Above the threshold the index is approximate; removing papers still works, and shrinking
    goes back to exact."""
    monkeypatch.setattr(vectors, "EXACT_MAX", 300)
    monkeypatch.setattr(vectors, "EXACT_BACK", 150)
    lines = [
        json.dumps({"title": f"Paper number {i}", "abstract": f"topic{i % 37} w{i}"})
        for i in range(400)
    ]
    path = library / "notes" / "big.jsonl"
    write(path, "\n".join(lines) + "\n")
    build_fake()
    idx = Index.open(library / "index")
    assert idx.manifest["index_type"] == "ivf" and idx.manifest["ivf_trained_on"] == 400
    idx.close()
    write(path, "\n".join(lines[:350]) + "\n")
    r = build_fake()
    assert r.papers_removed == 50 and r.chunks_embedded == 0
    consistent(library)
    idx = Index.open(library / "index")
    assert idx.manifest["index_type"] == "ivf"
    # the approximate index still finds a stored vector as its own best match
    vid = idx.query("SELECT vid FROM chunks LIMIT 1")[0][0]
    _s, ids = vectors.search(idx.vectors, vectors.reconstruct(idx.vectors, [vid]), 1)
    assert ids[0][0] == vid
    idx.close()
    write(path, "\n".join(lines[:100]) + "\n")
    build_fake()
    idx = Index.open(library / "index")
    assert idx.manifest["index_type"] == "flat"
    idx.close()
    consistent(library)


def test_full_still_counts_papers_against_the_previous_index(two_files: Path) -> None:
    r1 = build_fake()
    write(two_files / "b.md", "# B\n\n" + "".join(note(f"Beta paper {i}") for i in range(2)))
    r2 = build_fake(full=True)
    assert (r2.papers_added, r2.papers_changed, r2.papers_removed) == (0, 0, 1)
    assert r2.papers_unchanged == 7
    # Every old chunk is replaced: new = added, old = removed.
    assert (r2.chunks_unchanged, r2.chunks_added, r2.chunks_removed) == (0, r2.chunks, r1.chunks)


def test_build_encoder_gets_the_models_prompts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[object] = []

    def fake_load_onnx(
        index_dir: Path, fingerprint: str, prompts: object = None, **_: object
    ) -> object:
        seen.append(prompts)
        return "onnx"

    monkeypatch.setattr("search.encoders.query_encoder.load_onnx", fake_load_onnx)
    from search.encoders.encoder import ModelSpec

    got = index_encoder.load_encoder(
        ModelSpec("m", tmp_path), "fp", tmp_path, print, ("q: ", "p: ")
    )
    assert got == "onnx"
    assert seen == [("q: ", "p: ")]
