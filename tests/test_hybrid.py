"""Hybrid retrieval: keyword mode, fusion, --explain, similar; quality with the real model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from search.build import rebuild
from search.encoders.encoder import Encoder
from search.faces.cli import cli
from search.library import library_paths
from search.query import PLAIN_RRF, Fusion, Searcher, fuse
from search.storage.keywords import query_terms

from .conftest import SEED

# Papers whose names a bag-of-meaning encoder cannot know; the body says what they are.
EXTRA = [
    {
        "title": "Training language models to follow instructions with human feedback",
        "abstract": "We fine-tune GPT-3 with RLHF: a reward model learned from human "
        "preference rankings, then PPO against it.",
        "authors": ["Long Ouyang", "Jeff Wu"],
        "year": 2022,
    },
    {
        "title": "Deep metric learning with a smooth pair weighting",
        "abstract": "Pairs are weighted by how far they are from their optimum, which unifies "
        "triplet and softmax cross-entropy losses for face recognition and re-identification.",
        "authors": ["Jane Smith"],
        "year": 2023,
    },
    {
        "title": "Hard negative mining for triplet embeddings",
        "abstract": "Semi-hard negatives make triplet training of image embeddings converge.",
    },
    {
        "title": "Learning to denoise images from noisy observations only",
        "abstract": "A denoiser trained on pairs of independently corrupted images reaches the "
        "quality of one trained on clean targets.",
    },
]


class BlindEncoder:
    """Vectors that know nothing about words: every text is nearly the same point."""

    dim = 8
    max_tokens = 48
    query_prompt = ""
    document_prompt = ""

    def encode(
        self,
        texts: list[str],
        *,
        query: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        out = np.ones((len(texts), self.dim), dtype=np.float32)
        out[:, 0] += np.asarray([len(t) % 7 for t in texts], dtype=np.float32) / 100
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        import re

        return [m.span() for m in re.finditer(r"\w+", text)]


def write_library(library: Path) -> None:
    shutil.copy(SEED, library / "notes" / "cvpr2020.md")
    lines = [json.dumps(p) for p in EXTRA]
    (library / "notes" / "extra.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def blind(library: Path, encoders: Callable[[str, Callable[[], Encoder]], None]) -> Path:
    write_library(library)
    encoders("blind", BlindEncoder)
    run("rebuild", "--model", "blind")
    return library


# -- keyword retrieval and explanations ---------------------------------------------------------


def test_keyword_mode_finds_an_acronym_meaning_misses(blind: Path) -> None:
    kw = json.loads(run("ask", "RLHF", "--mode", "keyword", "--json"))
    assert kw[0]["title"].startswith("Training language models")
    assert kw[0]["explain"]["keyword"]["rank"] == 1
    assert kw[0]["explain"]["found_by"] == "keyword"
    assert kw[0]["explain"]["terms"] == ["rlhf"]
    assert len(kw) == 1  # nothing else mentions it
    sem = json.loads(run("ask", "RLHF", "--mode", "semantic", "--json", "-k", "3"))
    assert not any(h["title"].startswith("Training language") for h in sem)
    hybrid = json.loads(run("ask", "RLHF", "--json", "-k", "3"))
    assert hybrid[0]["title"].startswith("Training language models")
    assert hybrid[0]["explain"]["found_by"] == "both"


def test_keyword_finds_authors_years_stems_and_title_words(blind: Path) -> None:
    hits = json.loads(run("ask", "Smith 2023", "--mode", "keyword", "--json"))
    assert hits[0]["title"] == "Deep metric learning with a smooth pair weighting"
    assert hits[0]["explain"]["terms"] == ["smith"]  # the year is not indexed text
    # Porter stemming: "losses" matches "loss"; stopwords are not searched for.
    hits = json.loads(run("ask", "the circle losses", "--mode", "keyword", "--json"))
    assert hits[0]["title"].startswith("Circle Loss")
    assert hits[0]["explain"]["terms"] == ["circle", "losses"]


def test_explain_json_and_table(blind: Path) -> None:
    hits = json.loads(run("ask", "triplet embeddings", "--json", "--explain", "-k", "5"))
    for h in hits:
        why = h["explain"]
        assert why["found_by"] in ("semantic", "keyword", "both")
        for name in ("semantic", "keyword"):
            if name in why:
                assert why[name]["rank"] >= 1 and isinstance(why[name]["score"], float)
        assert (why["found_by"] == "both") == ("semantic" in why and "keyword" in why)
    top = next(h for h in hits if h["explain"].get("keyword", {}).get("rank") == 1)
    assert top["title"] == "Hard negative mining for triplet embeddings"
    assert top["explain"]["terms"] == ["triplet", "embeddings"]
    assert any(h["explain"]["found_by"] == "both" for h in hits)
    table = run("ask", "triplet embeddings", "--explain", "-k", "3", "--mode", "keyword")
    assert "found by keywords; semantic: not in top; keyword: rank 1 (" in table
    assert "terms: triplet, embeddings" in table


def test_modes_are_checked(blind: Path) -> None:
    s = Searcher(library_paths(blind).index)
    with pytest.raises(Exception, match="unknown mode"):
        s.ask("x", mode="fuzzy")


def test_similar_uses_the_paper_text(blind: Path) -> None:
    name = "Hard negative mining for triplet embeddings"
    # Hybrid: the paper's vectors and its text (title, notes, abstract) both rank.
    hits = json.loads(run("similar", name, "--json"))
    assert name not in [h["title"] for h in hits]
    assert {h["explain"]["found_by"] for h in hits} >= {"both"}
    # The text alone: itself is keyword rank 1, so the best other paper has rank 2.
    hits = json.loads(run("similar", name, "--json", "--mode", "keyword"))
    assert name not in [h["title"] for h in hits]
    assert hits[0]["explain"]["keyword"]["rank"] == 2
    assert hits[0]["explain"]["terms"]
    text = ["--text", "GPT-3 trained with PPO", "--mode", "keyword", "--json"]
    hits = json.loads(run("similar", *text))
    assert hits[0]["title"].startswith("Training language models")
    assert hits[0]["explain"]["terms"] == ["gpt", "3", "trained", "ppo"]


def test_query_terms() -> None:
    assert query_terms("What is the Circle Loss of the circle?") == ["circle", "loss"]
    assert query_terms("the of") == ["the", "of"]  # only stopwords: search them anyway
    assert query_terms("") == []


# -- fusion ------------------------------------------------------------------------------------


def test_fuse_rrf_and_blends() -> None:
    sem = [(1, 0.9), (2, 0.8), (3, 0.1)]
    kw = [(3, 12.0), (1, 2.0)]
    rrf = fuse(sem, kw, PLAIN_RRF)
    assert [p for p, _, _ in rrf] == [1, 3, 2]
    assert rrf[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert rrf[0][2] == {
        "semantic": {"rank": 1, "score": 0.9},
        "keyword": {"rank": 2, "score": 2.0},
        "found_by": "both",
    }
    assert rrf[2][2]["found_by"] == "semantic"
    mm = fuse(sem, kw, Fusion("minmax", 0, 0.5, 0.5))
    # 1: 0.5*1 + 0.5*0 ; 3: 0.5*0 + 0.5*1 ; 2: 0.5*0.875 + 0 (absent from keywords)
    assert {p: round(s, 4) for p, s, _ in mm} == {1: 0.5, 3: 0.5, 2: 0.4375}
    z = fuse(sem, kw, Fusion("zscore", 0, 1.0, 0.0))
    assert [p for p, _, _ in z] == [1, 2, 3]
    assert [p for p, _, _ in fuse(sem, [], PLAIN_RRF)] == [1, 2, 3]


# -- answer quality with the real model -----------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    lib = tmp_path_factory.mktemp("real") / "library"
    (lib / "notes").mkdir(parents=True)
    write_library(lib)
    paths = library_paths(lib)
    rebuild(paths)
    return Searcher(paths.index)


@pytest.mark.model
def test_real_hybrid_finds_circle_loss_by_name(real: Searcher) -> None:
    hits = real.ask("Circle Loss", k=5)
    assert hits[0].paper.title.startswith("Circle Loss")
    assert hits[0].explain["found_by"] == "both"
    assert hits[0].explain["terms"] == ["circle", "loss"]


@pytest.mark.model
def test_real_hybrid_keeps_paraphrases_and_exact_terms(real: Searcher) -> None:
    # No shared word with the note: found by meaning, still on top.
    hits = real.ask("train a denoiser when only corrupted pictures are available", k=3)
    assert any("denoise" in h.paper.title.lower() for h in hits[:2])
    hits = real.ask("RLHF", k=3)
    assert hits[0].paper.title.startswith("Training language models")
