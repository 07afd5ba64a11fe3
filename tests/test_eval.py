"""`papers eval` and its metrics, on a tiny BEIR folder written here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from search import evaluate
from search.errors import PapersError
from search.faces.cli import cli

DOCS = [
    ("d1", "Circle Loss", "A unified perspective of pair similarity optimization for embeddings."),
    ("d2", "Noise2Noise", "Learning image restoration without clean data from noisy pairs."),
    ("d3", "Proxy Anchor Loss", "Deep metric learning with proxies that anchor each class."),
    ("d4", "Momentum Contrast", "Unsupervised visual representation learning with a queue."),
    ("d5", "Zebrafish fins", "Regeneration of zebrafish fins after amputation in adults."),
]
QUERIES = [
    ("q1", "zebrafish regeneration"),
    ("q2", "momentum contrast queue"),
    ("q3", "metric learning with proxies"),
    ("q4", "a query nobody judged"),
]
QRELS = [("q1", "d5", 1), ("q2", "d4", 1), ("q3", "d3", 2), ("q3", "d1", 1), ("q4", "d2", 0)]


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for i, t, x in DOCS:
            f.write(json.dumps({"_id": i, "title": t, "text": x}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for i, x in QUERIES:
            f.write(json.dumps({"_id": i, "text": x}) + "\n")
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{s}" for q, d, s in QRELS)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


# -- metrics against hand-computed values ------------------------------------------------------


def test_ndcg_by_hand() -> None:
    rels = {"a": 2, "b": 1}
    # b at rank 1, a at rank 3: DCG = 1/log2(2) + 2/log2(4) = 1 + 1 = 2
    # ideal: a then b: 2/log2(2) + 1/log2(3)
    want = 2.0 / (2.0 + 1.0 / math.log2(3))
    assert evaluate.ndcg(["b", "x", "a"], rels) == pytest.approx(want)
    assert evaluate.ndcg(["a", "b"], rels) == pytest.approx(1.0)
    assert evaluate.ndcg(["x"] * 10 + ["a"], rels) == 0.0  # rank 11 is past the cut
    assert evaluate.ndcg([], rels) == 0.0


def test_recall_and_mrr_by_hand() -> None:
    rels = {"a": 1, "b": 1, "c": 0}
    ranked = ["x", "c", "b"] + [f"n{i}" for i in range(200)] + ["a"]
    assert evaluate.recall(ranked, rels) == pytest.approx(0.5)  # a is at rank 204
    assert evaluate.recall(["a", "b"], rels) == 1.0
    assert evaluate.mrr(ranked, rels) == pytest.approx(1 / 3)  # c is judged not relevant
    assert evaluate.mrr(["x"] * 10 + ["a"], rels) == 0.0


def test_scores_of_means_over_judged_queries() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    runs = {"q1": ["a"], "q2": ["x", "b"]}
    s = evaluate.scores_of(runs, qrels)
    assert s["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert s["recall@100"] == 1.0
    assert s["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_load_beir(tmp_path: Path) -> None:
    beir = evaluate.load_beir(write_beir(tmp_path / "tiny"))
    assert beir.split == "test"
    assert set(beir.queries) == {"q1", "q2", "q3"}  # q4 has no relevant document
    assert beir.qrels["q3"] == {"d3": 2, "d1": 1}


def test_load_beir_errors(tmp_path: Path) -> None:
    with pytest.raises(PapersError, match="corpus.jsonl"):
        evaluate.load_beir(tmp_path)
    folder = write_beir(tmp_path / "two")
    (folder / "qrels" / "dev.tsv").write_text("q1\td5\t1\n")
    assert evaluate.load_beir(folder).split == "test"
    with pytest.raises(PapersError, match="no qrels/train.tsv"):
        evaluate.load_beir(folder, "train")


# -- the command -------------------------------------------------------------------------------


def test_eval_command_json(tmp_path: Path, library: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    result = CliRunner().invoke(cli, ["eval", str(folder), "--json", "--model", "fake"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["documents"] == 5 and data["queries"] == 3 and data["split"] == "test"
    assert set(data["modes"]) == {"keyword", "semantic", "hybrid"}
    for m in data["modes"].values():
        assert set(m) >= {"ndcg@10", "recall@100", "mrr@10", "qps", "queries", "seconds"}
        assert 0.0 <= m["ndcg@10"] <= 1.0 and m["qps"] > 0
    # Keyword search puts each query's best answer first (they share rare words), and never
    # finds q3's second answer d1 (no word in common): scores known by hand.
    kw = data["modes"]["keyword"]
    assert kw["mrr@10"] == 1.0
    assert kw["recall@100"] == pytest.approx((1 + 1 + 0.5) / 3, abs=1e-4)
    assert kw["ndcg@10"] == pytest.approx((1 + 1 + 2 / (2 + 1 / math.log2(3))) / 3, abs=1e-4)
    assert "indexing 5 documents" in result.stderr
    # The throw-away library is gone; the user's library is untouched.
    assert not (library / "index").exists()


def test_eval_one_exact_query_scores_one(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td5\t1\n")
    result = CliRunner().invoke(
        cli, ["eval", str(folder), "--json", "--model", "fake", "--mode", "keyword"]
    )
    assert result.exit_code == 0, result.output
    kw = json.loads(result.stdout)["modes"]["keyword"]
    assert kw["ndcg@10"] == 1.0 and kw["mrr@10"] == 1.0 and kw["recall@100"] == 1.0


def test_eval_table_and_errors(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    result = CliRunner().invoke(cli, ["eval", str(folder), "--model", "fake"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "hybrid" in result.stdout
    bad = CliRunner().invoke(cli, ["eval", str(tmp_path), "--model", "fake"])
    assert bad.exit_code == 1 and "no corpus.jsonl" in bad.stderr
