"""The public API used directly, without the CLI: what the MCP server and web page will call."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import search
from search import (
    Hit,
    IndexMissing,
    Library,
    NotFound,
    Paper,
    PapersError,
    RebuildReport,
    Source,
)
from search.encoders.encoder import Encoder

from .conftest import FakeEncoder

Register = Callable[[str, Callable[[], Encoder]], None]


@pytest.fixture
def lib(seeded: Path) -> Library:
    library = Library(seeded, model="fake")
    report = library.rebuild()
    assert isinstance(report, RebuildReport)
    assert report.papers == 16
    return library


def test_front_door_exports_the_api() -> None:
    for name in search.__all__:
        assert getattr(search, name) is not None, name
    assert issubclass(NotFound, PapersError)
    assert isinstance(search.__version__, str)


def test_ask_returns_typed_hits(lib: Library) -> None:
    hits = lib.ask("dropout single image denoising", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    top = hits[0]
    assert isinstance(top, Hit) and isinstance(top.paper, Paper)
    assert top.paper.title.startswith("Self2Self With Dropout")
    assert top.paper.section == ("Misc",)
    assert top.paper.sources[0] == Source("notes/cvpr2020.md", top.paper.sources[0].line)
    assert top.paper.where.startswith("notes/cvpr2020.md:")
    assert top.why is not None and top.why.found_by in ("semantic", "keyword", "both")
    assert top.why.terms and "dropout" in top.why.terms
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_ask_by_mode_and_section(lib: Library) -> None:
    hits = lib.ask("learning", section="embedding", mode="keyword")
    assert hits and all(h.paper.section == ("Embedding",) for h in hits)
    assert all(h.why is not None and h.why.semantic is None for h in hits)
    with pytest.raises(PapersError, match="unknown mode"):
        lib.ask("learning", mode="fuzzy")


def test_similar_by_title_paper_and_text(lib: Library) -> None:
    by_title = lib.similar("Proxy Anchor Loss", k=5)
    assert by_title and all(not h.paper.title.startswith("Proxy Anchor") for h in by_title)
    paper = lib.show("Proxy Anchor Loss")
    assert [h.paper.id for h in lib.similar(paper, k=5)] == [h.paper.id for h in by_title]
    by_text = lib.similar(text="dropout denoising single image", k=3)
    assert by_text[0].paper.title.startswith("Self2Self")
    with pytest.raises(PapersError, match="exactly one"):
        lib.similar("Proxy Anchor Loss", text="both")


def test_similar_to_several_papers_together(library: Path) -> None:
    """More like these: the mean of the papers' vectors finds what is close to all of them,
    above what is close to one; none of them is among the results."""
    (library / "notes" / "set.md").write_text(
        "- Alpha Paper\n  > alpha beta alpha beta\n"
        "- Gamma Paper\n  > gamma delta gamma delta\n"
        "- Both Paper\n  > alpha beta gamma delta\n"
        "- Near Alpha Paper\n  > alpha beta zeta\n"
        "- Near Gamma Paper\n  > gamma delta theta\n"
        "- Far Paper\n  > omicron sigma\n",
        encoding="utf-8",
    )
    with Library(library, model="fake") as lib:
        lib.rebuild()
        together = lib.similar(["Alpha Paper", "Gamma Paper"], k=4, mode="semantic")
        titles = [h.paper.title for h in together]
        assert titles[0] == "Both Paper"
        assert not {"Alpha Paper", "Gamma Paper"} & set(titles)
        alone = [h.paper.title for h in lib.similar("Alpha Paper", k=2, mode="semantic")]
        assert alone[0] == "Near Alpha Paper"  # one paper alone is not the set
        # The same paper named twice counts once: the same as asking for it alone.
        twice = lib.similar(["Alpha Paper", lib.show("Alpha Paper")], k=3)
        assert [h.paper.id for h in twice] == [h.paper.id for h in lib.similar("Alpha Paper", k=3)]
        with pytest.raises(PapersError, match="at least one"):
            lib.similar([], k=3)


def test_show_and_papers(lib: Library) -> None:
    circle = lib.show("circle loss")
    assert circle.title.startswith("Circle Loss")
    assert "Dynamic similarity weighting" in circle.note
    assert circle.places == [s.where for s in circle.sources]
    papers = lib.papers()
    assert len(papers) == 16
    assert circle.id in {p.id for p in papers}
    with pytest.raises(NotFound):
        lib.show("qqxz vvkj")
    info = lib.info()
    assert info.papers == 16 and info.model == "fake" and info.generation.startswith("gen-")


def test_no_index_yet(seeded: Path) -> None:
    with pytest.raises(IndexMissing):
        Library(seeded).ask("anything")


def test_a_new_generation_is_picked_up_without_restart(lib: Library, seeded: Path) -> None:
    before = lib.info().generation
    assert not lib.ask("zebrafish regeneration", mode="keyword")
    with (seeded / "notes" / "more.md").open("w", encoding="utf-8") as f:
        f.write("# Biology\n\n* Zebrafish Heart Regeneration Atlas\n> fins and hearts\n")
    # Another process (here another Library) publishes a new generation.
    Library(seeded, model="fake").rebuild()
    hits = lib.ask("zebrafish regeneration", mode="keyword")
    assert hits[0].paper.title == "Zebrafish Heart Regeneration Atlas"
    assert lib.info().generation != before
    assert len(lib.papers()) == 17


def test_loaded_encoder_is_kept_across_generations(seeded: Path, encoders: Register) -> None:
    loads: list[int] = []

    def counting() -> Encoder:
        loads.append(1)
        return FakeEncoder()

    encoders("counting", counting)
    lib = Library(seeded, model="counting")
    lib.rebuild()
    loads.clear()
    lib.ask("denoising", mode="semantic")
    lib.ask("metric learning", mode="semantic")
    assert len(loads) == 1
    (seeded / "notes" / "more.md").write_text("* Another Paper On Denoising\n", encoding="utf-8")
    lib.rebuild()
    loads.clear()
    assert lib.ask("another paper on denoising", mode="semantic")
    assert loads == []  # same model: the encoder loaded for the old generation is reused


def test_close_and_context_manager(lib: Library) -> None:
    with lib:
        assert lib.ask("denoising", k=1)
    # Closed, then opened again on the next call.
    assert lib.ask("denoising", k=1)
    lib.close()


def test_import_files(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "papers.jsonl"
    src.write_text(json.dumps({"title": "A Paper", "abstract": "Its abstract."}) + "\n")
    report = Library(library).import_files([src])
    assert [f.written_records for f in report.files] == [1]
    written = report.files[0].written
    assert written is not None and written.parent == library / "notes" / "imported"


def test_threads_keep_answering_across_a_new_generation(lib: Library, seeded: Path) -> None:
    errors: list[BaseException] = []
    answered: list[int] = []
    stop = threading.Event()

    def ask_until_stopped() -> None:
        while not stop.is_set():
            try:
                answered.append(len(lib.ask("denoising dropout", k=3)))
            except BaseException as e:  # noqa: BLE001 - any error fails the test
                errors.append(e)
                return

    threads = [threading.Thread(target=ask_until_stopped) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(2):
            (seeded / "notes" / f"extra{i}.md").write_text(f"* Extra Paper {i}\n", "utf-8")
            Library(seeded, model="fake").rebuild()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert answered and set(answered) == {3}
    assert len(lib.papers()) == 18


def test_best_chunks_are_kept_per_thread(lib: Library) -> None:
    """The page a hit cites comes from its best chunk in the same question's ranking: a second
    thread ranking another question must not replace the first thread's best chunks."""
    searcher = lib._current()
    searcher.best_chunk = {1: 10}
    seen: list[dict[int, int]] = []

    def other() -> None:
        seen.append(dict(searcher.best_chunk))  # a fresh thread starts with none
        searcher.best_chunk = {1: 99}

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [{}]
    assert searcher.best_chunk == {1: 10}


def test_every_exported_name_exists() -> None:
    # A name in __all__ that is only imported for type checking breaks `from search import *`.
    import search.api

    for module in (search, search.api):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], (module.__name__, missing)
