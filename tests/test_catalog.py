"""The catalog, recommendations and catalog search, with the fake encoder (logic, not meaning)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from search.catalog.catalog import (
    Catalog,
    Embeddings,
    Filters,
    catalog_dir,
    catalog_encoder,
    read_shard,
)
from search.catalog.embed_stages import embed_pending
from search.faces.cli import cli
from search.library import library_paths
from tests.conftest import shared_data

NOTES = """# Metric learning

- Proxy Anchor Loss for Deep Metric Learning
  > proxies anchor pairs of embeddings; deep metric learning loss for retrieval

- Circle Loss: A Unified Perspective of Pair Similarity Optimization
  > pair similarity loss for metric learning and face recognition embeddings

# Denoising

- Self2Self With Dropout: Learning Self-Supervised Denoising From Single Image
  > denoise a single noisy image with dropout and self supervision
"""

CATALOG = [
    {
        "title": "Metric learning with proxies and anchor embeddings",
        "abstract": "A deep metric learning loss over proxies, anchor pairs and embeddings.",
        "publication_date": "2024-03-01",
    },
    {
        "title": "Pair similarity for face recognition embeddings",
        "abstract": "A loss for pair similarity in face recognition and metric learning.",
        "publication_date": "2023-05-01",
    },
    {
        "title": "Blind denoising of a single noisy image",
        "abstract": "Self supervision and dropout denoise one noisy image.",
        "publication_date": "2024-02-10",
    },
    {
        "title": "Protein folding with molecular dynamics",
        "abstract": "Molecular dynamics simulations of protein folding kinetics.",
        "publication_date": "2024-04-01",
    },
    {
        "title": "Galaxy rotation curves and dark matter halos",
        "abstract": "Observations of galaxy rotation curves constrain dark matter halos.",
        "publication_date": "2024-05-01",
    },
    # The same paper as one in the notes: never recommended.
    {
        "title": "Proxy Anchor Loss for Deep Metric Learning",
        "abstract": "Proxy anchor loss: proxies, anchors, deep metric learning embeddings.",
        "publication_date": "2020-03-01",
    },
]


def run(*args: str, ok: bool = True) -> click.testing.Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result


def one_error_line(result: click.testing.Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def notes_and_catalog(library: Path, tmp_path: Path) -> Path:
    (library / "notes" / "reading.md").write_text(NOTES, encoding="utf-8")
    run("rebuild", "--model", "fake")
    src = write_jsonl(tmp_path / "works.jsonl", CATALOG)
    run("catalog", "add", str(src))
    run("catalog", "embed")
    return library


# -- reading sources --------------------------------------------------------------------------


def test_arxiv_snapshot_filters_by_category_and_date(library: Path) -> None:
    snapshot = shared_data("arxiv") / "arxiv-metadata-oai-snapshot.sample.jsonl"
    lines = [json.loads(line) for line in snapshot.read_text().splitlines() if line.strip()]
    want = {
        o["id"]
        for o in lines
        if any(c == "math.CO" or c.startswith("math.CO.") for c in o["categories"].split())
    }
    assert want  # the sample holds some
    cat = Catalog.open(catalog_dir(library_paths()), create=True)
    report = cat.add_files([snapshot], Filters(categories=("math.CO",)))
    assert report.added == len(want) == cat.count()
    keys = {r[0] for r in cat.db.execute("SELECT arxiv FROM papers")}
    assert keys == want
    # Dates come from the first version: all of the sample is from 2007.
    dates = {r[0] for r in cat.db.execute("SELECT date FROM papers")}
    assert all(d.startswith("2007-") for d in dates)
    # --since keeps papers on or after the date: none of the sample is from 2024.
    cat2 = Catalog.open(catalog_dir(library_paths()) / "other", create=True)
    assert cat2.add_files([snapshot], Filters(since="2024-01-01")).added == 0
    assert cat2.add_files([snapshot], Filters(since="2007-04-02")).added > 0


def test_openalex_beir_and_plain_lines_are_read_and_joined(library: Path, tmp_path: Path) -> None:
    rows = [
        # OpenAlex: display_name and an inverted-index abstract.
        {
            "id": "https://openalex.org/W1",
            "display_name": "Sparse attention for long documents",
            "abstract_inverted_index": {"Attention": [0], "is": [1], "sparse.": [2]},
            "publication_date": "2024-01-05",
            "doi": "https://doi.org/10.1234/ABC",
        },
        # BEIR corpus line.
        {"_id": "42", "title": "Vitamin D and bone density", "text": "A trial of vitamin D."},
        {"title": "A plain paper", "abstract": "With an abstract."},
        "not an object",
    ]
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    cat = Catalog.open(catalog_dir(library_paths()), create=True)
    report = cat.add_files([src])
    assert report.added == 3
    assert len(report.problems) == 2  # the string and the broken line
    p = next(iter(cat.papers([1]).values()))
    assert p.title == "Sparse attention for long documents"
    assert p.abstract == "Attention is sparse."
    assert p.date == "2024-01-05" and p.doi == "10.1234/abc" and p.key == "doi:10.1234/abc"
    # Adding the same file again changes nothing; a changed abstract is an update.
    again = cat.add_files([src])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    rows[2]["abstract"] = "A new abstract."
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]), encoding="utf-8")
    changed = cat.add_files([src])
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
    assert cat.count() == 3


# -- embedding --------------------------------------------------------------------------------


def test_embed_only_new_text_and_resume_after_a_kill(library: Path, tmp_path: Path) -> None:
    paths = library_paths()
    rows = [
        {"title": f"paper {i} about topic {i % 7}", "abstract": f"words {i}"} for i in range(50)
    ]
    cat = Catalog.open(catalog_dir(paths), create=True)
    cat.add_files([write_jsonl(tmp_path / "a.jsonl", rows)])
    enc = catalog_encoder(paths, "fake")
    store = Embeddings.of(paths, enc.fingerprint)

    calls = {"n": 0}

    def dies_after_two(texts: list[str]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt  # as if the run were killed mid-way
        return enc.encode(texts)

    with pytest.raises(KeyboardInterrupt):
        embed_pending(cat, store, dies_after_two, shard_size=8)
    assert len(store.shard_files()) == 2
    assert len(store.pending(cat)[0]) == 50 - 16
    # The next run starts after the finished shards.
    assert embed_pending(cat, store, enc.encode, shard_size=8) == 34
    merged = store.merge(cat)
    assert len(merged.cids) == 50
    # Vectors are the encoder's (stored as float16).
    texts = [t for _, t in cat.texts(merged.cids)]
    expect = enc.encode(texts)
    got = np.asarray(merged.vectors, dtype=np.float32)
    assert np.allclose(got, expect, atol=2e-3)
    # One new paper: only it is embedded.
    cat.add_files([write_jsonl(tmp_path / "b.jsonl", [{"title": "a new one", "abstract": "x"}])])
    assert embed_pending(cat, store, enc.encode) == 1
    newest = max(store.shard_files(), key=lambda p: p.stat().st_mtime_ns)
    hashes, vecs = read_shard(newest)
    assert len(hashes) == 1 and vecs.dtype == np.float16


def test_search_refuses_a_catalog_changed_since_embedding(
    notes_and_catalog: Path, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "more.jsonl", [{"title": "Late paper", "abstract": "late"}])
    run("catalog", "add", str(src))
    line = one_error_line(run("recommend", ok=False))
    assert "papers catalog embed" in line
    run("catalog", "embed")
    assert run("recommend", "--json").stdout


# -- recommend --------------------------------------------------------------------------------


def test_recommend_ranks_by_notes_and_never_returns_a_noted_paper(notes_and_catalog: Path) -> None:
    out = json.loads(run("recommend", "--json", "-k", "10").stdout)
    titles = [r["title"] for r in out]
    assert "Proxy Anchor Loss for Deep Metric Learning" not in titles
    assert len(titles) == 5
    # The off-topic papers come last.
    assert set(titles[-2:]) == {
        "Protein folding with molecular dynamics",
        "Galaxy rotation curves and dark matter halos",
    }
    for r in out:
        assert r["closest"]["title"] in NOTES and r["closest"]["where"].startswith("notes/")


@pytest.mark.parametrize("method", ["centroid", "maxsim", "svm", "svm-kw"])
def test_like_a_section_puts_its_neighbours_first(notes_and_catalog: Path, method: str) -> None:
    out = json.loads(
        run("recommend", "--like", "Denoising", "--method", method, "--json", "-k", "3").stdout
    )
    assert out[0]["title"] == "Blind denoising of a single noisy image"
    assert out[0]["closest"]["title"].startswith("Self2Self")


def test_unlike_pushes_a_topic_down(notes_and_catalog: Path) -> None:
    plain = json.loads(run("recommend", "--method", "centroid", "--json").stdout)
    against = json.loads(
        run("recommend", "--method", "centroid", "--unlike", "Denoising", "--json").stdout
    )
    rank = {r["title"]: r["rank"] for r in plain}
    rank_against = {r["title"]: r["rank"] for r in against}
    name = "Blind denoising of a single noisy image"
    assert rank_against[name] > rank[name]
    assert all(r["closest"]["title"] != "Self2Self" for r in against)


def test_since_is_a_digest_of_new_papers(notes_and_catalog: Path, tmp_path: Path) -> None:
    out = json.loads(run("recommend", "--since", "2024-03-01", "--json").stdout)
    assert {r["date"] for r in out} == {"2024-03-01", "2024-04-01", "2024-05-01"}
    digest = tmp_path / "digest.md"
    run("recommend", "--since", "2024-03", "--markdown", str(digest))
    text = digest.read_text(encoding="utf-8")
    assert text.startswith("# Papers for you since 2024-03-01")
    assert "Metric learning with proxies and anchor embeddings" in text
    assert "closest to your" in text
    assert "Pair similarity" not in text  # published before --since


def test_recommend_errors_are_one_line(library: Path) -> None:
    (library / "notes" / "reading.md").write_text(NOTES, encoding="utf-8")
    run("rebuild", "--model", "fake")
    assert "papers catalog add" in one_error_line(run("recommend", ok=False))
    bad = run("recommend", "--since", "last tuesday", ok=False)
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
    missing = run("catalog", "add", "nope.jsonl", ok=False)
    assert missing.exit_code == 2 and "nope.jsonl" in missing.stderr


def test_recommend_unknown_like_is_one_line(notes_and_catalog: Path) -> None:
    line = one_error_line(run("recommend", "--like", "Quantum gravity", ok=False))
    assert "Quantum gravity" in line


# -- catalog search and summary ---------------------------------------------------------------


def test_ask_and_similar_search_the_catalog(notes_and_catalog: Path) -> None:
    out = json.loads(run("ask", "noisy image denoising dropout", "--catalog", "--json").stdout)
    assert out[0]["title"] == "Blind denoising of a single noisy image"
    # A plain ask stays about the notes.
    notes = json.loads(run("ask", "noisy image denoising dropout", "--json").stdout)
    assert all(h["sources"] for h in notes)
    similar = json.loads(
        run("similar", "Proxy Anchor Loss", "--catalog", "--json", "-k", "3").stdout
    )
    titles = [h["title"] for h in similar]
    assert "Proxy Anchor Loss for Deep Metric Learning" not in titles  # itself, in the catalog
    assert titles[0] == "Metric learning with proxies and anchor embeddings"
    text = json.loads(
        run("similar", "--text", "galaxy dark matter", "--catalog", "--json", "-k", "1").stdout
    )
    assert text[0]["title"].startswith("Galaxy")


def test_catalog_summary(notes_and_catalog: Path) -> None:
    data = json.loads(run("catalog", "--json").stdout)
    assert data["papers"] == 6 and data["first_date"] == "2020-03-01"
    assert data["embeddings"][0]["vectors"] == 6 and data["embeddings"][0]["current"]
    text = run("catalog").stdout
    assert "6 papers" in text and "current" in text
    # list stays about the notes.
    assert len(json.loads(run("list", "--json").stdout)) == 3


def test_catalog_is_kept_apart_from_notes_and_index(notes_and_catalog: Path) -> None:
    root = notes_and_catalog
    assert (root / "catalog" / "catalog.sqlite").is_file()
    assert not any("catalog" in p.name for p in (root / "notes").iterdir())
    before = run("rebuild", "--model", "fake", "--json").stdout
    assert json.loads(before)["papers"] == 3


def test_embed_with_nothing_new_keeps_the_merged_vectors(notes_and_catalog: Path) -> None:
    merged = next((notes_and_catalog / "catalog" / "embeddings").glob("*/merged"))
    before = (merged / "vectors.npy").stat().st_mtime_ns
    out = json.loads(run("catalog", "embed", "--json").stdout)
    assert out["embedded"] == 0 and out["papers"] == 6
    assert (merged / "vectors.npy").stat().st_mtime_ns == before


def test_catalog_commands_have_help_with_examples() -> None:
    for args in (["catalog"], ["catalog", "add"], ["catalog", "embed"], ["recommend"]):
        out = run(*args, "--help").stdout
        assert "Usage:" in out and "Examples:" in out, args


def test_help_and_summary_do_not_import_heavy_modules(notes_and_catalog: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from search.faces.cli import cli\n"
        "for args in (['catalog', '--help'], ['recommend', '--help'], ['catalog']):\n"
        "    try:\n"
        "        cli(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'sklearn', 'ray', 'faiss') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out


def test_default_method_uses_keywords_when_the_catalog_has_them(notes_and_catalog: Path) -> None:
    from search.catalog.recommend import recommend

    result = recommend(library_paths(), k=3)
    assert result.method == "svm-kw"
    merged = next((notes_and_catalog / "catalog" / "embeddings").glob("*/merged"))
    (merged / "keywords.npz").unlink()
    assert recommend(library_paths(), k=3).method == "svm"


@pytest.mark.parametrize("method", ["centroid", "maxsim", "svm", "svm-kw"])
def test_scores_read_from_disk_in_blocks_equal_scores_from_memory(
    tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.catalog import ann
    from search.catalog.recommend import Examples, Positive, keyword_matrix, scores_for

    monkeypatch.setattr(ann, "SCORE_BLOCK", 97)  # many blocks, one partial
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x16 = x.astype(np.float16)
    path = tmp_path / "vectors.npy"
    np.save(path, x16)
    texts = [f"word{i % 17} word{i % 5} topic{i % 3}" for i in range(1000)]
    keywords = keyword_matrix(texts)
    examples = Examples(
        positives=[Positive(str(i), f"p{i}", "", texts[i]) for i in range(20)],
        pos_vecs=x[:20],
        negatives=[Positive("n", "n", "", texts[500])],
        neg_vecs=x[500:501],
    )
    for candidates in (np.arange(1000), np.arange(0, 1000, 3), np.array([5, 600, 999])):
        in_memory = scores_for(method, x16, candidates, examples, keywords=keywords)
        on_disk = ann.Rows(path)
        from_disk = scores_for(method, on_disk, candidates, examples, keywords=keywords)
        on_disk.close()
        assert from_disk.shape == (len(candidates),)
        assert np.allclose(from_disk, in_memory, atol=1e-5)
        if method == "centroid":  # and both are the scores, not just equal to each other
            w = x[:20].mean(axis=0) - 0.5 * x[500]
            assert np.allclose(in_memory, x16[candidates].astype(np.float32) @ w, atol=1e-5)
