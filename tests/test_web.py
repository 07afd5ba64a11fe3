"""`papers serve` (the web app, in-process), `papers map`, and the map stored at rebuild."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from search.api import Library
from search.faces.cli import cli
from search.storage import map as library_map
from search.storage import store, vectors
from search.storage.store import current_generation

from .web_support import PAPERS, TOPICS, build_topic_library

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from search.faces.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield build_topic_library(tmp_path_factory.mktemp("web") / "library")


@pytest.fixture
def client(built: Path) -> Iterator[TestClient]:
    lib = Library(built, model="fake")
    with TestClient(create_app(lib), base_url="http://127.0.0.1:8765") as c:
        yield c
    lib.close()


# -- the map ---------------------------------------------------------------------------------
def test_rebuild_stores_a_map_whose_clusters_follow_the_topics(built: Path) -> None:
    gen = current_generation(built / "index")
    assert gen is not None
    m = library_map.read(gen)
    assert m is not None and m.method == library_map.LAYOUT
    assert len(m.points) == PAPERS and m.fitted_papers == PAPERS
    assert sum(c.size for c in m.clusters) == PAPERS
    assert all(-1.01 <= p.x <= 1.01 and -1.01 <= p.y <= 1.01 for p in m.points)
    # Clusters do not mix topics, and each is labelled by its topic's words.
    for c in m.clusters:
        topics = [p.section[0] for p in m.points if p.cluster == c.id and p.section[0] in TOPICS]
        if len(topics) < 3:
            continue
        main = max(set(topics), key=topics.count)
        assert topics.count(main) >= 0.8 * len(topics), c
        assert set(c.terms) & (set(TOPICS[main]) | {main.lower()}), c
    # and the layout keeps topics apart: a paper's nearest point is usually of its own topic
    xy = np.array([[p.x, p.y] for p in m.points])
    topic = [p.section[0] if p.section else "" for p in m.points]
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1) + np.eye(len(xy)) * 9
    same = [topic[i] == topic[int(j)] for i, j in enumerate(d.argmin(1)) if topic[i] in TOPICS]
    assert sum(same) >= 0.8 * len(same)


def test_a_new_paper_is_placed_and_the_rest_stay_still(built: Path, tmp_path: Path) -> None:
    lib = tmp_path / "copy"
    shutil.copytree(built, lib)
    before = library_map.read(current_generation(lib / "index"))  # type: ignore[arg-type]
    notes = lib / "notes" / "topics.md"
    notes.write_text(
        notes.read_text() + "\n- Robot arm grasp torque planner\n  > robot grasp arm motor\n"
    )
    Library(lib, model="fake").rebuild()
    after = library_map.read(current_generation(lib / "index"))  # type: ignore[arg-type]
    assert before is not None and after is not None
    assert after.placed_since_fit == 1 and after.fitted_papers == PAPERS
    old = {p.id: (p.x, p.y) for p in before.points}
    new = [p for p in after.points if p.id not in old]
    assert len(new) == 1
    assert all((p.x, p.y) == old[p.id] for p in after.points if p.id in old)
    # placed among the robot papers: its nearest mapped neighbours are robot papers
    robots = np.array([[p.x, p.y] for p in after.points if p.section == ["Robots"] and p.id in old])
    others = np.array([[p.x, p.y] for p in after.points if p.section != ["Robots"]])
    here = np.array([new[0].x, new[0].y])
    assert np.linalg.norm(robots - here, axis=1).min() < np.linalg.norm(others - here, axis=1).min()


def _map_rows(m: library_map.LibraryMap) -> tuple[list[tuple[object, ...]], list[object]]:
    points = sorted((p.id, p.x, p.y, p.cluster, p.hash, p.title) for p in m.points)
    clusters = [(c.id, c.label, c.size, c.x, c.y, c.top) for c in m.clusters]
    return points, [m.method, m.fitted_papers, m.placed_since_fit, m.scale, clusters]


def test_an_edit_patches_the_map_as_a_map_made_from_every_paper_would_be(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit's generation is a copy of the previous one: its map rows are brought up to date
    (a paper added, one changed, one removed) without reading every paper's text, and give
    the map `compute` makes from every paper of the new generation."""
    lib = tmp_path / "copy"
    shutil.copytree(built, lib)
    before = library_map.read(current_generation(lib / "index"))  # type: ignore[arg-type]
    assert before is not None
    seed = lib / "notes" / "cvpr2020.md"
    text = seed.read_text(encoding="utf-8")
    assert "> Angular loss combined with triplet loss" in text
    text = text.replace("> Angular loss combined with triplet loss", "> robot arm grasp torque")
    removed = (
        "* Proxy Anchor Loss for Deep Metric Learning\n"
        ">Proxy-NCA + Lifted Structuered; converges faster\n"
    )
    assert removed in text
    text = text.replace(removed, "")
    seed.write_text(text, encoding="utf-8")
    (lib / "notes" / "more.md").write_text(
        "- Grammar parsing of token sentences\n  > language word translation\n",
        encoding="utf-8",
    )
    patched: list[bool] = []
    real_patch = library_map.patch_rows

    def spy(*args: Any) -> Any:
        out = real_patch(*args)
        patched.append(out is not None)
        return out

    monkeypatch.setattr(library_map, "patch_rows", spy)

    def rebuild_and_compare(previous: library_map.LibraryMap) -> library_map.LibraryMap:
        Library(lib, model="fake").rebuild()
        assert patched[-1] is True
        gen = current_generation(lib / "index")
        assert gen is not None
        after = library_map.read(gen)
        assert after is not None
        idx = store.Index.open_generation(gen)
        try:
            expected = library_map.compute(library_map.map_input(idx), previous)
        finally:
            idx.close()
        assert _map_rows(after) == _map_rows(expected)
        assert sorted(c.size for c in after.clusters) == sorted(
            np.bincount([p.cluster for p in after.points]).tolist()
        )
        return after

    after = rebuild_and_compare(before)
    assert after.placed_since_fit == 3
    old = {p.id: p for p in before.points}
    moved = [p.id for p in after.points if p.id in old and (p.x, p.y) != (old[p.id].x, old[p.id].y)]
    assert len(moved) == 1  # the paper whose note changed
    assert len(after.points) == len(before.points)  # one in, one out
    # a paper removed and nothing placed: only the cluster it leaves is summed up again
    (lib / "notes" / "more.md").unlink()
    again = rebuild_and_compare(after)
    assert again.placed_since_fit == 4 and len(again.points) == len(after.points) - 1
    assert [(p.x, p.y) for p in again.points] == [
        (p.x, p.y) for p in after.points if p.id in {q.id for q in again.points}
    ]


def test_a_map_kept_in_map_json_is_read_and_moved_into_the_tables(
    built: Path, tmp_path: Path
) -> None:
    """Generations made before the map moved into index.sqlite keep it in map.json: it is
    read, and the next rebuild places new papers into it and writes the map's tables."""
    lib = tmp_path / "copy"
    shutil.copytree(built, lib)
    gen = current_generation(lib / "index")
    assert gen is not None
    stored = library_map.read(gen)
    assert stored is not None
    (gen / library_map.MAP_NAME).write_text(json.dumps(stored.to_json()), encoding="utf-8")
    db = sqlite3.connect(gen / store.DB_NAME)
    db.executescript("DROP TABLE map_points; DROP TABLE map_info;")
    db.close()
    sums = json.loads((gen / store.CHECKSUMS).read_text(encoding="utf-8"))
    sums[store.DB_NAME] = {
        "bytes": (gen / store.DB_NAME).stat().st_size,
        "crc32": store.file_checksum(gen / store.DB_NAME),
    }
    (gen / store.CHECKSUMS).write_text(json.dumps(sums), encoding="utf-8")
    legacy = library_map.read(gen)
    assert legacy is not None and _map_rows(legacy) == _map_rows(stored)
    (lib / "notes" / "more.md").write_text("- Robot torque planner\n  > robot arm\n")
    Library(lib, model="fake").rebuild()
    new_gen = current_generation(lib / "index")
    assert new_gen is not None and not (new_gen / library_map.MAP_NAME).exists()
    after = library_map.read(new_gen)
    assert after is not None and after.placed_since_fit == 1
    old = {p.id: (p.x, p.y) for p in stored.points}
    assert all((p.x, p.y) == old[p.id] for p in after.points if p.id in old)


def test_a_map_that_cannot_be_made_is_left_out_and_made_again_later(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "copy"
    shutil.copytree(built, lib)
    (lib / "notes" / "more.md").write_text("- Robot torque planner\n  > robot arm\n")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise FloatingPointError("the layout diverged")

    monkeypatch.setattr(library_map, "place_tsne", broken)
    said: list[str] = []
    library = Library(lib, model="fake", log=said.append)
    library.rebuild()
    assert "map: not made (FloatingPointError: the layout diverged)" in said
    gen = current_generation(lib / "index")
    assert gen is not None and library_map.read(gen) is None
    assert library.papers()  # the rest of the index is there
    # `papers map` computes one in memory; the next rebuild that changes a paper stores one
    assert len(library_map.load(lib / "index").points) == PAPERS + 1
    monkeypatch.undo()
    (lib / "notes" / "more.md").write_text("- Robot torque planner\n  > robot arm motor\n")
    Library(lib, model="fake").rebuild()
    again = library_map.read(current_generation(lib / "index"))  # type: ignore[arg-type]
    assert again is not None and len(again.points) == PAPERS + 1


def test_an_opentsne_map_has_its_library_imported_in_the_background(built: Path) -> None:
    """warm_up starts importing openTSNE (about 1 s) while the rebuild copies files, for a
    library whose map it laid out, and not for one with a PCA map."""
    script = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from search.storage import map as m, store\n"
        "idx = store.Index.open(Path(sys.argv[1]))\n"
        "if sys.argv[2] == 'pca':\n"
        "    idx.map_info = lambda: {'method': 'pca'}\n"
        "m.warm_up(idx)\n"
        "for t in threading.enumerate():\n"
        "    if t.name == 'map-import':\n"
        "        t.join()\n"
        "print('openTSNE' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    for method, expected in (("opentsne", "True True"), ("pca", "False False")):
        out = subprocess.run(
            [sys.executable, "-c", script, str(built / "index"), method],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == expected, (method, out.stderr)


def test_placed_papers_are_optimised_near_their_neighbours_and_the_map_stays_still() -> None:
    """On an openTSNE map new papers start at `place` and are then optimised against the
    mapped papers (openTSNE's transform, in t-SNE units from the stored scale and offset); a map
    without that scale (written before it was stored) places by `place` alone."""
    rng = np.random.default_rng(5)
    topics, per_topic, new_per_topic = 6, 42, 2
    centres = rng.normal(size=(topics, 32))
    topic = np.repeat(np.arange(topics), per_topic + new_per_topic)
    x = (centres[topic] + rng.normal(scale=0.6, size=(len(topic), 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    is_new = np.tile(np.arange(per_topic + new_per_topic) >= per_topic, topics)
    old_rows, new_rows = np.flatnonzero(~is_new), np.flatnonzero(is_new)

    def data_of(rows: np.ndarray) -> library_map.MapInput:
        return library_map.MapInput(
            ids=[f"p{i}" for i in rows],
            titles=[f"t{i}" for i in rows],
            sections=[[f"topic{topic[i]}"] for i in rows],
            texts=[f"word{topic[i]} other" for i in rows],
            hashes=["h"] * len(rows),
            vectors=x[rows],
        )

    first = library_map.compute(data_of(old_rows), method="opentsne")
    assert first.method == "opentsne" and first.scale > 0
    stored = library_map.LibraryMap.from_json(json.loads(json.dumps(first.to_json())))
    assert (stored.scale, stored.offset) == (first.scale, first.offset)
    everything = np.concatenate([old_rows, new_rows])
    after = library_map.compute(data_of(everything), stored, method="opentsne")
    assert after.placed_since_fit == len(new_rows) and after.scale == first.scale
    before_xy = {p.id: (p.x, p.y) for p in first.points}
    assert all((p.x, p.y) == before_xy[p.id] for p in after.points if p.id in before_xy)
    xy = np.array([[p.x, p.y] for p in after.points])
    section = [p.section[0] for p in after.points]
    n_old = len(old_rows)
    for j in range(n_old, len(everything)):
        d = np.linalg.norm(xy[:n_old] - xy[j], axis=1)
        # its 5 nearest mapped papers on the map are of its own topic
        assert {section[i] for i in np.argsort(d)[:5]} == {section[j]}, after.points[j]
    # optimised, not left where `place` starts them
    start, _ = library_map.place(x[new_rows], x[old_rows], xy[:n_old])
    assert np.abs(start - xy[n_old:]).max() > 0.01
    # the map's Barnes-Hut (its tree built once) moves them exactly as openTSNE's own does
    from openTSNE.tsne import kl_divergence_bh

    args = (x[new_rows], x[old_rows], xy[:n_old], first.scale, first.offset)
    ours, _ = library_map.place_tsne(*args)
    theirs, _ = library_map.place_tsne(*args, gradient=kl_divergence_bh)
    assert np.allclose(ours, theirs, atol=1e-6) and np.allclose(ours, xy[n_old:], atol=1e-4)
    # an older map without the scale: `place` alone
    stored.scale = 0.0
    legacy = library_map.compute(data_of(everything), stored, method="opentsne")
    legacy_xy = np.array([[p.x, p.y] for p in legacy.points[n_old:]])
    assert np.allclose(legacy_xy, start, atol=1e-4)


def test_many_changes_refit_the_map() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    data = library_map.MapInput(
        ids=[f"p{i}" for i in range(60)],
        titles=[f"t{i}" for i in range(60)],
        sections=[[] for _ in range(60)],
        texts=["alpha beta"] * 60,
        hashes=["h"] * 60,
        vectors=x,
    )
    first = library_map.compute(data, method="pca")
    data.hashes = ["h"] * 50 + ["changed"] * 10  # 10 of 60 changed: over REFIT_FRACTION
    again = library_map.compute(data, first, method="pca")
    assert again.placed_since_fit == 0 and again.fitted_papers == 60
    data.hashes = ["h"] * 50 + ["changed"] * 9 + ["x"]
    placed = library_map.compute(data, again, method="pca")
    assert placed.placed_since_fit == 1


def test_paper_vectors_are_read_alike_from_exact_and_ivf_indexes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The map averages each paper's chunk vectors, read through vectors.iter_vectors whatever
    the index type."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vids = np.arange(300, dtype=np.int64) * 3 + 1
    # papers of 1 to 4 chunks, not in order of their vectors; the last vectors belong to no
    # paper, paper 1000 has no vector and the papers of pid 0-9 are not asked for
    owner = np.repeat(np.arange(120), rng.integers(1, 5, size=120))[:280]
    rng.shuffle(owner)
    chunk_pid = {int(v): int(owner[i]) for i, v in enumerate(vids[:280])}
    pids = [1000, *sorted(set(owner.tolist()) - set(range(10)), reverse=True)]
    expected = np.zeros((len(pids), 16), dtype=np.float32)
    for row, p in enumerate(pids[1:], start=1):
        mean = x[:280][owner == p].mean(axis=0)
        expected[row] = mean / np.linalg.norm(mean)
    flat = vectors.new_index(16)
    flat.add_with_ids(x, vids)
    assert np.allclose(library_map.paper_vectors(flat, chunk_pid, pids), expected, atol=1e-6)
    monkeypatch.setattr(vectors, "EXACT_MAX", 100)
    ivf, _ = vectors.finish(flat, None)
    assert vectors.kind(ivf) == "ivf"
    assert np.allclose(library_map.paper_vectors(ivf, chunk_pid, pids), expected, atol=1e-6)


def test_unchanged_papers_fit_nothing_and_a_method_change_refits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    data = library_map.MapInput(
        ids=[f"p{i}" for i in range(40)],
        titles=[f"t{i}" for i in range(40)],
        sections=[["A"] for _ in range(40)],
        texts=["alpha beta"] * 40,
        hashes=["h"] * 40,
        vectors=x,
    )
    first = library_map.compute(data, method="pca")
    data.titles[0], data.sections[0] = "renamed", ["B"]  # a new heading, the same text
    fitted: list[str] = []
    real_fit = library_map.fit_layout_scaled

    def counting_fit(
        x: np.ndarray, method: str = "pca", seed: int = 0
    ) -> tuple[np.ndarray, float, list[float]]:
        fitted.append(method)
        return real_fit(x, "pca", seed)

    monkeypatch.setattr(library_map, "fit_layout_scaled", counting_fit)
    again = library_map.compute(data, first, method="pca")
    assert fitted == [] and again.placed_since_fit == 0
    assert [(p.x, p.y) for p in again.points] == [(p.x, p.y) for p in first.points]
    assert again.points[0].title == "renamed" and again.points[0].section == ["B"]
    # a map made by another layout method (an older release's) is fitted again
    first.method = "umap"
    refitted = library_map.compute(data, first, method="opentsne")
    assert fitted == ["opentsne"] and refitted.method == "opentsne"


@pytest.mark.parametrize("n", [library_map.MIN_LAYOUT, 60, 200])
def test_a_small_library_gets_a_layout_without_warnings(
    n: int, caplog: pytest.LogCaptureFixture
) -> None:
    """openTSNE lowers a perplexity too high for the library itself, but logs a warning that
    would reach stderr in every rebuild: the map picks one that fits."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with caplog.at_level("DEBUG"):
        xy = library_map.fit_layout(x, "opentsne")
    assert xy.shape == (n, 2) and np.isfinite(xy).all() and len(np.unique(xy, axis=0)) == n
    assert [r for r in caplog.records if r.levelno >= 30] == []


def test_c_tf_idf_prefers_words_that_set_a_cluster_apart() -> None:
    texts = ["shared denoise noise", "shared denoise image", "shared robot grasp", "shared robot"]
    labels = library_map.label_clusters(texts, np.array([0, 0, 1, 1]), n_terms=1)
    assert labels == [["denoise"], ["robot"]]


def test_a_small_library_gets_a_pca_map(seeded: Path) -> None:
    Library(seeded, model="fake").rebuild()
    m = library_map.read(current_generation(seeded / "index"))  # type: ignore[arg-type]
    assert m is not None and m.method == "pca" and len(m.points) == 16
    assert len({(p.x, p.y) for p in m.points}) > 1


def test_papers_map_prints_clusters_and_json(built: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["--library", str(built), "map"])
    assert text.exit_code == 0, text.stderr
    assert text.stdout.startswith(f"{PAPERS} papers in ")
    data = json.loads(runner.invoke(cli, ["--library", str(built), "map", "--json"]).stdout)
    assert sum(c["size"] for c in data["clusters"]) == PAPERS
    assert all(c["label"] and len(c["top"]) <= 3 for c in data["clusters"])
    assert data["clusters"][0]["top"][0]["where"].startswith("notes/")


def test_papers_map_html_is_one_self_contained_file(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    result = CliRunner().invoke(cli, ["--library", str(built), "map", "--html", str(out)])
    assert result.exit_code == 0, result.stderr
    html = out.read_text()
    assert "PapersMap.start({data:" in html and "<canvas" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from outside
    assert html.count("</script>") == 2


def test_papers_map_without_an_index_is_one_line(library: Path) -> None:
    result = CliRunner().invoke(cli, ["map"])
    assert result.exit_code == 1 and "papers rebuild" in result.stderr
    assert "Traceback" not in result.stderr


# -- the web app -----------------------------------------------------------------------------
def test_one_question_searches_on_one_thread_and_gives_it_back() -> None:
    """A single query runs FAISS on one OpenMP thread (warm servers answer one question at a
    time), finds what a batch search finds, and leaves the thread count as it was."""
    import faiss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    index = vectors.new_index(16)
    index.add_with_ids(x, np.arange(500, dtype=np.int64))
    before = faiss.omp_get_max_threads()
    one = vectors.search(index, x[7:8], 5)
    batch = vectors.search(index, x[5:10], 5)
    assert faiss.omp_get_max_threads() == before
    assert np.array_equal(one[1][0], batch[1][2]) and one[1][0][0] == 7


def test_search_page_shows_results_with_where_and_why(client: TestClient) -> None:
    page = client.get("/", params={"q": "robot grasp torque"})
    assert page.status_code == 200
    assert page.text.count('class="hit"') == 10
    assert "notes/topics.md:" in page.text and "found by" in page.text
    assert re.search(r'href="/paper/[^"]+"', page.text)
    empty = client.get("/", params={"q": "robot", "mode": "nonsense"})
    assert "unknown mode" in empty.text


def test_paper_page_has_notes_sources_and_similar(client: TestClient) -> None:
    page = client.get("/paper/" + client.get("/api/papers").json()[0]["id"])
    assert page.status_code == 200
    assert "Sources" in page.text and "Similar papers" in page.text
    assert page.text.count('<li><a href="/paper/') == 10
    assert client.get("/paper/nothing-like-this-zzz").status_code == 404


def test_api_mirrors_the_cli_json(client: TestClient, built: Path) -> None:
    runner = CliRunner()
    args = ["--library", str(built)]
    cli_ask = json.loads(
        runner.invoke(
            cli, [*args, "ask", "robot grasp", "-k", "5", "--json", "--model", "fake"]
        ).stdout
    )
    assert client.get("/api/ask", params={"q": "robot grasp", "k": 5}).json() == cli_ask
    cli_show = json.loads(runner.invoke(cli, [*args, "show", "Circle Loss", "--json"]).stdout)
    assert client.get("/api/papers/" + cli_show["id"]).json() == cli_show
    cli_list = json.loads(runner.invoke(cli, [*args, "list", "--json"]).stdout)
    assert client.get("/api/papers").json() == cli_list
    similar = client.get("/api/similar", params={"paper": "Circle Loss", "k": 3}).json()
    assert len(similar) == 3 and cli_show["id"] not in {h["id"] for h in similar}
    # ?paper=A&paper=B: papers like both together
    pair = [("paper", "Circle Loss"), ("paper", "Proxy Anchor Loss"), ("k", "3")]
    both = client.get("/api/similar", params=pair).json()
    assert len(both) == 3
    assert not any(h["title"].startswith(("Circle Loss", "Proxy Anchor")) for h in both)
    missing = client.get("/api/ask", params={"q": ""})
    assert missing.status_code == 400 and "empty" in missing.json()["error"]


def test_api_map_has_every_paper_and_cluster_labels(client: TestClient) -> None:
    data = client.get("/api/map").json()
    assert len(data["ids"]) == len(data["x"]) == len(data["notes"]) == PAPERS
    assert data["clusters"] and all(c["label"] for c in data["clusters"])
    assert set(data["sections"]) >= set(TOPICS)


def test_read_only_and_host_checked(client: TestClient) -> None:
    assert client.post("/api/ask", data={"q": "x"}).status_code == 405
    assert client.delete("/api/papers/x").status_code == 405
    # DNS rebinding: a page on another name reaching 127.0.0.1 carries its own Host header
    assert client.get("/api/papers", headers={"Host": "attacker.example:8765"}).status_code == 400
    assert client.get("/api/papers", headers={"Host": "localhost:8765"}).status_code == 200


def test_pages_load_nothing_from_outside(client: TestClient) -> None:
    for path in ("/", "/map", "/?q=robot"):
        html = client.get(path).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), path
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset


def test_serve_refuses_a_public_address_without_the_flag(library: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--allow-remote" in result.stderr


def test_new_commands_have_help_with_examples() -> None:
    for name in ("map", "mcp", "serve", "watch"):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Examples" in result.stdout, name
