"""Answer quality on a BEIR-format folder: nDCG@10, Recall@100 and MRR@10 per retrieval mode.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`)
and `qrels/<split>.tsv` (query-id, corpus-id, score; an optional header line). The corpus is
indexed into a throw-away library with the normal rebuild, and every query goes through
`Searcher.ask`, the code behind `papers ask`, so the figures describe what users get.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.build import rebuild
from search.errors import PapersError
from search.library import library_paths
from search.query import MODES, Searcher

Log = Callable[[str], None]

NDCG_AT = 10
RECALL_AT = 100
MRR_AT = 10
CORPUS_FILE = "corpus.jsonl"


# -- metrics -----------------------------------------------------------------------------------


def ndcg(ranked: Sequence[str], rels: dict[str, int], k: int = NDCG_AT) -> float:
    """nDCG@k with linear gains (as pytrec_eval/BEIR): sum rel/log2(rank+1) over the ideal."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: Sequence[str], rels: dict[str, int], k: int = RECALL_AT) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr(ranked: Sequence[str], rels: dict[str, int], k: int = MRR_AT) -> float:
    """1/rank of the first relevant document in the top k, 0 if none."""
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def scores_of(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries of `qrels`."""
    qids = [q for q in qrels if any(r > 0 for r in qrels[q].values())]
    if not qids:
        raise PapersError("no query has a relevant document in the qrels")
    n = len(qids)
    return {
        f"ndcg@{NDCG_AT}": sum(ndcg(runs.get(q, []), qrels[q]) for q in qids) / n,
        f"recall@{RECALL_AT}": sum(recall(runs.get(q, []), qrels[q]) for q in qids) / n,
        f"mrr@{MRR_AT}": sum(mrr(runs.get(q, []), qrels[q]) for q in qids) / n,
    }


# -- the data set ------------------------------------------------------------------------------


@dataclass
class Beir:
    """A BEIR folder read into memory: the queries that have judgements, and the judgements."""

    folder: Path
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str


def _json_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise PapersError(f"cannot read {path}: {e.strerror or e}") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise PapersError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(obj, dict) or "_id" not in obj:
            raise PapersError(f'{path}:{number}: expected an object with an "_id"')
        yield number, obj


def _qrels_file(folder: Path, split: str | None) -> Path:
    qdir = folder / "qrels"
    files = sorted(qdir.glob("*.tsv")) if qdir.is_dir() else []
    if not files:
        raise PapersError(f"no qrels/*.tsv in {folder}")
    if split:
        for f in files:
            if f.stem == split:
                return f
        raise PapersError(f"no qrels/{split}.tsv in {folder} (have: {_names(files)})")
    if len(files) == 1:
        return files[0]
    for name in ("test", "dev", "train"):
        for f in files:
            if f.stem == name:
                return f
    raise PapersError(f"several qrels in {folder} ({_names(files)}): choose one with --split")


def _names(files: list[Path]) -> str:
    return ", ".join(f.stem for f in files)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise PapersError(f"cannot read {path}: {e.strerror or e}") from None
    for number, line in enumerate(lines, start=1):
        cols = line.split("\t")
        if not line.strip():
            continue
        if len(cols) < 3:
            raise PapersError(f"{path}:{number}: expected query-id, corpus-id, score")
        try:
            grade = int(float(cols[2]))
        except ValueError:
            if number == 1:  # the header line
                continue
            raise PapersError(f"{path}:{number}: the score is not a number") from None
        qrels.setdefault(cols[0].strip(), {})[cols[1].strip()] = grade
    return qrels


def load_beir(folder: Path, split: str | None = None) -> Beir:
    """Read a BEIR folder; only queries with at least one relevant document are kept."""
    corpus = folder / CORPUS_FILE
    if not corpus.is_file():
        raise PapersError(f"no {CORPUS_FILE} in {folder}")
    qfile = _qrels_file(folder, split)
    qrels = read_qrels(qfile)
    queries = {
        str(obj["_id"]): str(obj.get("text") or "")
        for _, obj in _json_lines(folder / "queries.jsonl")
    }
    judged = {q: r for q, r in qrels.items() if q in queries and any(v > 0 for v in r.values())}
    if not judged:
        raise PapersError(f"no query of queries.jsonl has a relevant document in {qfile.name}")
    return Beir(folder, corpus, {q: queries[q] for q in judged}, judged, qfile.stem)


def write_notes(beir: Beir, notes: Path) -> dict[int, str]:
    """Write the corpus into `notes` as one JSON-lines file; returns line number -> doc id.

    A document without a title gets the start of its text as title (the notes need one).
    """
    notes.mkdir(parents=True, exist_ok=True)
    out: list[str] = []
    ids: dict[int, str] = {}
    for _, obj in _json_lines(beir.corpus):
        text = str(obj.get("text") or "")
        title = str(obj.get("title") or "").strip() or " ".join(text.split()[:12]) or "untitled"
        doc = {"_id": str(obj["_id"]), "title": title, "text": text}
        out.append(json.dumps(doc, ensure_ascii=False))
        ids[len(out)] = doc["_id"]
    (notes / CORPUS_FILE).write_text("\n".join(out) + "\n", encoding="utf-8")
    return ids


def doc_ids_of(searcher: Searcher, line_ids: dict[int, str]) -> dict[int, list[str]]:
    """pid -> the corpus ids it stands for (papers with the same title are merged into one)."""
    out: dict[int, list[str]] = {}
    for row in searcher.all_papers():
        ids = [line_ids[line] for f, line in row.sources if f == CORPUS_FILE and line in line_ids]
        if ids:
            out[row.pid] = ids
    return out


# -- running the queries -----------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    scores: dict[str, float]
    seconds: float
    queries: int
    runs: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class EvalReport:
    """What `papers eval` measured: the corpus indexed and each mode's scores (JSON shape in
    `search.faces.output.eval_json`)."""

    dataset: str
    split: str
    documents: int
    papers: int
    queries: int
    model: str
    build_seconds: float
    modes: dict[str, ModeResult]


def run_mode(
    searcher: Searcher,
    beir: Beir,
    doc_ids: dict[int, list[str]],
    mode: str,
    depth: int = RECALL_AT,
) -> ModeResult:
    """Every query through `Searcher.ask`, timed; the ranked corpus ids per query."""
    if mode != "keyword":
        searcher.encoder  # noqa: B018 - load the model before the clock starts
    runs: dict[str, list[str]] = {}
    start = time.perf_counter()
    for qid, text in beir.queries.items():
        hits = searcher.ask(text, k=depth, mode=mode) if text.strip() else []
        runs[qid] = [d for h in hits for d in doc_ids.get(h.paper.pid, [])]
    seconds = time.perf_counter() - start
    return ModeResult(mode, scores_of(runs, beir.qrels), seconds, len(beir.queries), runs)


def evaluate_folder(
    folder: Path,
    *,
    model: str | None = None,
    modes: Sequence[str] = ("keyword", "semantic", "hybrid"),
    split: str | None = None,
    workdir: Path,
    log: Log = lambda s: None,
    progress: Any = None,
) -> EvalReport:
    """Index `folder`'s corpus into a library under `workdir`, then score each mode."""
    for m in modes:
        if m not in MODES:
            raise PapersError(f"unknown mode {m!r}: use one of {', '.join(MODES)}")
    beir = load_beir(folder, split)
    paths = library_paths(workdir)
    line_ids = write_notes(beir, paths.notes)
    log(f"indexing {len(line_ids)} documents of {folder.name}…")
    report = rebuild(paths, model=model, log=log, progress=progress)
    with Searcher(paths.index, warn=log) as searcher:
        doc_ids = doc_ids_of(searcher, line_ids)
        results = {}
        for m in modes:
            log(f"running {len(beir.queries)} queries ({m})…")
            results[m] = run_mode(searcher, beir, doc_ids, m)
    return EvalReport(
        dataset=folder.name,
        split=beir.split,
        documents=len(line_ids),
        papers=report.papers,
        queries=len(beir.queries),
        model=report.model,
        build_seconds=report.seconds,
        modes=results,
    )
