"""Answer quality of every ranking variant tried, on a BEIR folder (default: SciFact train).

Builds the index once (or reuses --cache DIR), ranks every query once per retriever, then scores
each way of fusing the two rankings offline with `search.query.fuse` (the function `papers ask`
uses). The shipped default is also run end to end through `Searcher.ask`, as `papers eval` does.
Prints markdown tables: every variant on all queries, then a 2-fold check (parameters picked on
one half of the queries, scored on the other).

    .venv/bin/python bench/quality.py --cache /tmp/papers-bench/scifact
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from search import evaluate  # noqa: E402
from search.build import rebuild  # noqa: E402
from search.library import library_paths  # noqa: E402
from search.query import DEFAULT_FUSION, PLAIN_RRF, Fusion, Searcher, fuse  # noqa: E402
from search.storage import keywords, vectors  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact-train"
DEPTH = 100
Ranking = list[tuple[int, float]]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def open_library(data: Path, cache: Path, model: str | None) -> tuple[Searcher, dict[int, str]]:
    paths = library_paths(cache)
    notes_file = paths.notes / evaluate.CORPUS_FILE
    if not (paths.index / "CURRENT").is_file():
        beir = evaluate.load_beir(data)
        evaluate.write_notes(beir, paths.notes)
        log(f"building the index in {cache} (a few minutes)…")
        rebuild(paths, model=model, log=log)
    line_ids = {n: str(o["_id"]) for n, o in evaluate._json_lines(notes_file)}
    return Searcher(paths.index, warn=log), line_ids


def keyword_plain(s: Searcher, text: str, n: int, title_weight: float) -> Ranking:
    """bm25 over every word of the query, stopwords included (the first version)."""
    words = list(dict.fromkeys(re.findall(r"\w+", text.lower())))
    rows = s.index.query(
        "SELECT rowid, bm25(papers_fts, ?, 1.0) AS s FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY s LIMIT ?",
        (title_weight, keywords.fts_query(words), n),
    )
    return [(int(p), -float(v)) for p, v in rows]


def rocchio(s: Searcher, qvec: np.ndarray, top: list[int], beta: float) -> np.ndarray:
    """The query vector moved towards the mean vector of the `top` papers."""
    vids = [v for pid in top for v in s.index.paper_vids(pid)]
    docs = vectors.reconstruct(s.index.vectors, vids)
    v = qvec + beta * docs.mean(axis=0)
    return v / np.linalg.norm(v)


def collect(s: Searcher, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every ranking each variant needs, per query (computed once)."""
    out: dict[str, dict[str, Any]] = {}
    qvecs = s.encoder.encode(list(queries.values()), query=True)
    for i, (qid, text) in enumerate(queries.items()):
        r: dict[str, Any] = {"sem": s.semantic(qvecs[i], DEPTH)}
        for tw in (1.0, 2.0, 3.0, 5.0):
            r[f"kw{tw:g}"] = keywords.keyword_search(s.index, text, DEPTH, title_weight=tw)
        r["kw_all_words"] = keyword_plain(s, text, DEPTH, keywords.TITLE_WEIGHT)
        base = fuse(r["sem"], r[f"kw{keywords.TITLE_WEIGHT:g}"], DEFAULT_FUSION)
        top = [pid for pid, _, _ in base[:3]]
        for beta in (0.5, 1.0):
            r[f"sem_prf{beta:g}"] = s.semantic(rocchio(s, qvecs[i], top, beta), DEPTH)
        r["qvec"] = qvecs[i]
        out[qid] = r
    return out


def score(
    runs: dict[str, list[tuple[int, Any]] | Ranking],
    doc_ids: dict[int, list[str]],
    qrels: dict[str, dict[str, int]],
) -> dict[str, float]:
    as_ids = {q: [d for x in r[:DEPTH] for d in doc_ids.get(x[0], [])] for q, r in runs.items()}
    return evaluate.scores_of(as_ids, {q: qrels[q] for q in runs})


Variant = Callable[[dict[str, Any]], list[Any]]


def variants() -> dict[str, Variant]:
    kw = f"kw{keywords.TITLE_WEIGHT:g}"
    v: dict[str, Variant] = {
        "keyword: bm25, all words (stopwords kept), title x3": lambda r: r["kw_all_words"],
    }
    for tw in (1.0, 2.0, 3.0, 5.0):
        v[f"keyword: bm25, stopwords dropped, title x{tw:g}"] = lambda r, t=tw: r[f"kw{t:g}"]
    v["semantic: all-MiniLM-L6-v2"] = lambda r: r["sem"]
    v["semantic + Rocchio PRF (top 3 hybrid, beta 0.5)"] = lambda r: r["sem_prf0.5"]
    v["hybrid: RRF k=60 over all-words bm25 (the first version)"] = lambda r: fuse(
        r["sem"], r["kw_all_words"], PLAIN_RRF
    )
    for k in (1, 5, 10, 20, 40, 60, 100):
        v[f"hybrid: RRF k={k}"] = lambda r, k=k: fuse(r["sem"], r[kw], Fusion("rrf", k))
    for k in (10, 60):
        for w in (0.7, 1.5):
            v[f"hybrid: RRF k={k}, semantic weight {w:g}"] = lambda r, k=k, w=w: fuse(
                r["sem"], r[kw], Fusion("rrf", k, w, 1.0)
            )
    for method in ("minmax", "zscore"):
        for a in (0.3, 0.4, 0.5, 0.6, 0.7):
            v[f"hybrid: {method} blend, semantic weight {a:g}"] = lambda r, m=method, a=a: fuse(
                r["sem"], r[kw], Fusion(m, 0.0, a, 1 - a)
            )
    for beta in (0.5, 1.0):
        v[f"hybrid: RRF k=60 with Rocchio PRF semantic (beta {beta:g})"] = lambda r, b=beta: fuse(
            r[f"sem_prf{b:g}"], r[kw], PLAIN_RRF
        )
        v[f"hybrid: zscore 0.5 with Rocchio PRF semantic (beta {beta:g})"] = lambda r, b=beta: fuse(
            r[f"sem_prf{b:g}"], r[kw], Fusion("zscore", 0, 0.5, 0.5)
        )
    v["hybrid: query type (digits/acronyms: keyword weight 1.5), RRF k=60"] = lambda r: fuse(
        r["sem"], r[kw], Fusion("rrf", 60, 1.0, 1.5 if r["exact"] else 1.0)
    )
    v[SHIPPED] = lambda r: fuse(r["sem"], r[kw], DEFAULT_FUSION)
    return v


SHIPPED = f"hybrid: shipped default {DEFAULT_FUSION}"
_EXACT = re.compile(r"\b(?:\w*\d\w*|[A-Z][A-Z0-9-]{1,})\b")


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    out = ["| variant | nDCG@10 | Recall@100 | MRR@10 |", "|---|---:|---:|---:|"]
    for name, m in rows:
        out.append(f"| {name} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR folder")
    ap.add_argument(
        "--cache", type=Path, default=Path("/tmp/papers-bench/scifact"), help="library to reuse"
    )
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    beir = evaluate.load_beir(args.data)
    searcher, line_ids = open_library(args.data, args.cache, args.model)
    doc_ids = evaluate.doc_ids_of(searcher, line_ids)
    t0 = time.perf_counter()
    cached = collect(searcher, beir.queries)
    for qid, r in cached.items():
        r["exact"] = bool(_EXACT.search(beir.queries[qid]))
    log(f"rankings collected in {time.perf_counter() - t0:.1f} s")

    var = variants()
    results = {
        name: score({q: f(r) for q, r in cached.items()}, doc_ids, beir.qrels)
        for name, f in var.items()
    }
    # The shipped default, end to end through Searcher.ask (as `papers eval` runs it).
    e2e = {m: evaluate.run_mode(searcher, beir, doc_ids, m) for m in evaluate.MODES}
    rows = list(results.items())
    for m in ("keyword", "semantic", "hybrid"):
        rows.append((f"**shipped `{m}` via Searcher.ask** ({e2e[m].qps:.0f} q/s)", e2e[m].scores))

    # 2-fold check: choose the best variant on one half, score it (and the singles) on the other.
    qids = sorted(cached)
    halves = [qids[0::2], qids[1::2]]
    kw_name = f"keyword: bm25, stopwords dropped, title x{keywords.TITLE_WEIGHT:g}"
    fold_rows = []
    for i, (tune, held) in enumerate(((halves[0], halves[1]), (halves[1], halves[0]))):
        hybrids = [n for n in var if n.startswith("hybrid")]

        def on(qs: list[str], name: str) -> dict[str, float]:
            return score({q: var[name](cached[q]) for q in qs}, doc_ids, beir.qrels)

        best = max(hybrids, key=lambda n: on(tune, n)["ndcg@10"])
        sem_name = "semantic: all-MiniLM-L6-v2"
        fold_rows.append((f"fold {i + 1} held-out: keyword", on(held, kw_name)))
        fold_rows.append((f"fold {i + 1} held-out: semantic", on(held, sem_name)))
        fold_rows.append((f"fold {i + 1} held-out: best on other half = {best}", on(held, best)))
        fold_rows.append((f"fold {i + 1} held-out: shipped default", on(held, SHIPPED)))

    print(f"`{' '.join(['.venv/bin/python', 'bench/quality.py', *sys.argv[1:]])}`  ")
    print(
        f"{beir.folder.name}, split {beir.split}: {len(line_ids)} documents, "
        f"{len(beir.queries)} queries; {platform.processor() or platform.machine()}, "
        f"{_cores()} cores; {time.strftime('%Y-%m-%d')}\n"
    )
    print(table(rows))
    print("\n2-fold check (queries split by alternate id):\n")
    print(table(fold_rows))
    if args.json:
        args.json.write_text(json.dumps({"all": results, "folds": dict(fold_rows)}, indent=1))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
