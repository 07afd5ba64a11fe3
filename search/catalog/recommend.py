"""`papers recommend`: rank catalog papers by how much they look like the papers in your notes.

Positives are your noted papers (all of them, or those picked with --like SECTION|TAG|TITLE);
--unlike picks negatives. Methods (docs/benchmarks.md, "Recommendations", compares them on
held-out papers of a real reading list):

* "centroid": cosine to the mean of the positives (minus half the negatives' mean: Rocchio).
* "maxsim": the best cosine to any one positive (minus half the best to any negative): a
  library of several topics is not averaged into one.
* "svm": a linear SVM trained per call, as arxiv-sanity does: positives against the
  negatives and a random sample of the catalog, on the vectors.
* "svm-kw": the same SVM over the vectors plus hashed TF-IDF word and bigram features (the
  features arxiv-sanity uses), when the catalog has them (up to KEYWORD_MAX papers).

Every result names the positive paper it is closest to. Papers already in your notes (same
arXiv id, DOI or title) are never recommended.

Every method scores the whole catalog, so scoring reads the float16 vectors in small blocks
with pread (ann.blocks: memory stays flat from 100k to 2.7M papers, where a memory map would
hold every page read) on one BLAS thread (ann.one_blas_thread). Speed and memory per method:
docs/benchmarks.md, "Recommendations".
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.catalog.catalog import (
    Catalog,
    CatalogError,
    CatalogPaper,
    Embeddings,
    Merged,
    ann,
    catalog_dir,
)
from search.errors import NotFound, PapersError
from search.library import Paths, shorten
from search.query import Searcher, in_section
from search.storage import vectors

METHODS = ("centroid", "maxsim", "svm", "svm-kw")
# "auto": svm-kw when the catalog has keyword features (up to KEYWORD_MAX papers), else svm:
# the two best on the benchmark in docs/benchmarks.md ("Recommendations").
DEFAULT_METHOD = "auto"
# Catalog papers sampled as unlabelled negatives for the SVM: training time grows with it
# (LinearSVC on 600 positives: ~0.06 s with 2,000, ~0.6 s with 10,000 on an idle 2-core
# machine), and 2,000 random papers already cover a catalog's topics.
NEGATIVE_SAMPLE = 2_000
# Weight of the negatives in centroid and maxsim (Rocchio's usual 0.5).
NEGATIVE_WEIGHT = 0.5
# SVM regularisation (liblinear's C), chosen on the benchmark.
SVM_C = 0.1
# Keyword features are built for catalogs up to this size (a sparse matrix kept on disk).
KEYWORD_MAX = 300_000
KEYWORD_FEATURES = 1 << 18
KEYWORDS_FILE = "keywords.npz"
IDF_FILE = "idf.npy"
# Weight of the keyword block against the (unit) vector block in svm-kw.
KEYWORD_WEIGHT = 1.0

Log = Callable[[str], None]


@dataclass
class Positive:
    """One of your papers used as an example."""

    id: str
    title: str
    where: str
    text: str


@dataclass
class Recommendation:
    rank: int
    score: float
    paper: CatalogPaper
    closest: Positive
    closest_similarity: float

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            # 0..1 for people: the cosine similarity to the closest of your papers, clipped
            # (an SVM's score is negative for most papers and means nothing to a reader).
            "relevance": round(min(1.0, max(0.0, self.closest_similarity)), 4),
            **self.paper.to_json(),
            "closest": {
                "id": self.closest.id,
                "title": self.closest.title,
                "where": self.closest.where,
                "similarity": round(self.closest_similarity, 4),
            },
        }


@dataclass
class Examples:
    """Positive and negative examples with their vectors (unit rows)."""

    positives: list[Positive]
    pos_vecs: np.ndarray
    negatives: list[Positive] = field(default_factory=list)
    neg_vecs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


# --------------------------------------------------------------------------------------------
# Picking your papers
# --------------------------------------------------------------------------------------------


def _select(rows: list[Any], spec: str, find: Callable[[str], Any]) -> list[Any]:
    """Papers under a heading containing `spec`, else tagged `spec`, else titled `spec`."""

    by_section = [r for r in rows if in_section(r, spec)]
    if by_section:
        return by_section
    want = spec.casefold()
    by_tag = [r for r in rows if any(t.casefold() == want for t in r.tags)]
    if by_tag:
        return by_tag
    try:
        return [find(spec)]
    except NotFound:
        raise NotFound(f"no section, tag or title in your notes matches {spec!r}") from None


def notes_examples(
    index_dir: Path, like: list[str], unlike: list[str]
) -> tuple[Examples, Any, dict[str, Any]]:
    """Your papers as examples (all of them when `like` is empty), the notes Index, and its
    manifest."""

    searcher = Searcher(index_dir)
    index = searcher.index
    rows = index.all_papers()
    pos_rows = _unique([r for s in like for r in _select(rows, s, searcher.find)]) if like else rows
    neg_rows = _unique([r for s in unlike for r in _select(rows, s, searcher.find)])
    neg_ids = {r.pid for r in neg_rows}
    pos_rows = [r for r in pos_rows if r.pid not in neg_ids]
    if not pos_rows:
        raise PapersError("no positive papers left (every --like paper is also --unlike)")
    wanted = {r.pid for r in [*pos_rows, *neg_rows]}
    by_pid: dict[int, list[int]] = {}
    for vid, pid in index.query("SELECT vid, pid FROM chunks ORDER BY pid, ord"):
        if pid in wanted:
            by_pid.setdefault(pid, []).append(vid)

    def vecs_of(sel: list[Any]) -> np.ndarray:
        out = np.zeros((len(sel), int(index.vectors.d)), dtype=np.float32)
        for i, r in enumerate(sel):
            vids = by_pid.get(r.pid, [])
            if vids:
                v = vectors.reconstruct(index.vectors, vids).mean(axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out

    def positive(r: Any) -> Positive:
        text = " ".join([r.title, *r.notes, r.abstract])
        return Positive(id=r.id, title=r.title, where=r.where, text=text)

    examples = Examples(
        positives=[positive(r) for r in pos_rows],
        pos_vecs=vecs_of(pos_rows),
        negatives=[positive(r) for r in neg_rows],
        neg_vecs=vecs_of(neg_rows),
    )
    return examples, index, index.manifest


def _unique(rows: list[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for r in rows:
        if r.pid not in seen:
            seen.add(r.pid)
            out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# Keyword features (hashed TF-IDF of words and bigrams, as arxiv-sanity)
# --------------------------------------------------------------------------------------------


def _hasher() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=KEYWORD_FEATURES,
        ngram_range=(1, 2),
        stop_words="english",
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def _tfidf(counts: Any, idf: np.ndarray) -> Any:
    from sklearn.preprocessing import normalize

    counts = counts.tocsr().astype(np.float32)
    counts.data = 1.0 + np.log(counts.data)  # sublinear tf
    counts = counts.multiply(idf.reshape(1, -1)).tocsr()
    return normalize(counts, copy=False)


def build_keywords(catalog: Catalog, merged: Merged, log: Log = lambda s: None) -> bool:
    """Write keyword features of every merged paper into merged/ (skipped above KEYWORD_MAX)."""
    import scipy.sparse as sp

    n = len(merged.cids)
    if n > KEYWORD_MAX:
        return False
    log(f"keyword features for {n} papers…")
    step = 20_000
    texts = (t for s in range(0, n, step) for _, t in catalog.texts(merged.cids[s : s + step]))
    matrix, idf = keyword_matrix(texts, step)
    sp.save_npz(merged.folder / KEYWORDS_FILE, matrix, compressed=False)
    np.save(merged.folder / IDF_FILE, idf)
    return True


def keyword_matrix(texts: Iterable[str], step: int = 20_000) -> tuple[Any, np.ndarray]:
    """Hashed TF-IDF rows (unit length) of `texts`, and the idf weights they were built with."""
    import scipy.sparse as sp

    hasher = _hasher()
    parts, batch = [], []
    for t in texts:
        batch.append(t)
        if len(batch) == step:
            parts.append(hasher.transform(batch))
            batch = []
    if batch:
        parts.append(hasher.transform(batch))
    counts = sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, KEYWORD_FEATURES))
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=KEYWORD_FEATURES).astype(np.float32)
    idf = (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)
    return _tfidf(counts, idf), idf


def _load_keywords(merged: Merged) -> tuple[Any, np.ndarray] | None:
    """The keyword features merged/ holds (None when it holds none); CatalogError naming the
    file when one is there but cannot be read."""
    import scipy.sparse as sp

    path = merged.folder / KEYWORDS_FILE
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:  # our own handle: numpy leaks its own on a bad zip
            matrix = sp.load_npz(fh).tocsr()
        path = merged.folder / IDF_FILE
        idf = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        why = getattr(e, "strerror", None) or str(e).split("\n")[0] or type(e).__name__
        raise CatalogError(
            f"{path} is damaged ({why}): run `papers catalog embed`, which writes it again"
        ) from None
    if matrix.shape != (len(merged.cids), len(idf)):
        raise CatalogError(
            f"{merged.folder / KEYWORDS_FILE} does not match the merged vectors: run "
            "`papers catalog embed`, which writes it again"
        )
    return matrix, idf


def keywords_damage(merged: Merged) -> str | None:
    """Why the keyword features in merged/ cannot be used, or None (fine, or none built)."""
    try:
        _load_keywords(merged)
    except CatalogError as e:
        return str(e).split(": run")[0]
    return None


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def scores_for(
    method: str,
    vecs: Any,
    candidates: np.ndarray,
    examples: Examples,
    *,
    keywords: tuple[Any, np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A score for each candidate row (ascending row numbers) of `vecs` (unit rows: an
    ann.Rows over the float16 file, or an array): higher is more like the positives. The rows
    are read in blocks, so memory does not grow with the catalog."""

    with ann.one_blas_thread():
        return _scores(method, vecs, candidates, examples, keywords, seed)


def _scores(
    method: str,
    vecs: Any,
    candidates: np.ndarray,
    examples: Examples,
    keywords: tuple[Any, np.ndarray] | None,
    seed: int,
) -> np.ndarray:
    pos, neg = examples.pos_vecs, examples.neg_vecs
    has_neg = len(neg) > 0
    if method == "centroid":
        w = pos.mean(axis=0)
        if has_neg:
            w = w - NEGATIVE_WEIGHT * neg.mean(axis=0)
        return _dot(vecs, candidates, w)
    if method == "maxsim":
        best = np.full(len(candidates), -np.inf, dtype=np.float32)
        worst = np.full(len(candidates), -np.inf, dtype=np.float32)
        for s, part in ann.blocks(vecs, candidates):
            best[s : s + len(part)] = (part @ pos.T).max(axis=1)
            if has_neg:
                worst[s : s + len(part)] = (part @ neg.T).max(axis=1)
        return best - NEGATIVE_WEIGHT * worst if has_neg else best
    if method in ("svm", "svm-kw"):
        use_kw = method == "svm-kw"
        if use_kw and keywords is None:
            raise PapersError(
                "svm-kw needs keyword features, built by `papers catalog embed` for catalogs "
                f"of at most {KEYWORD_MAX} papers"
            )
        return _svm_scores(vecs, candidates, examples, keywords if use_kw else None, seed)
    raise PapersError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")


def _dot(vecs: Any, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`w` against the given rows of `vecs`, read in blocks (see ann.blocks)."""
    w = np.asarray(w, dtype=np.float32)
    out = np.empty(len(rows), dtype=np.float32)
    for s, part in ann.blocks(vecs, rows):
        out[s : s + len(part)] = part @ w
    return out


def _every_row(rows: np.ndarray, n: int) -> bool:
    """`rows` is 0..n-1 in order (then no copy of the keyword matrix is needed)."""
    return len(rows) == n and (not n or (int(rows[0]) == 0 and int(rows[-1]) == n - 1))


def _svm_scores(
    vecs: Any,
    candidates: np.ndarray,
    examples: Examples,
    keywords: tuple[Any, np.ndarray] | None,
    seed: int,
) -> np.ndarray:
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    sample = np.sort(
        rng.choice(len(candidates), size=min(NEGATIVE_SAMPLE, len(candidates)), replace=False)
    )
    sample_rows = candidates[sample]
    x_dense = np.concatenate(
        [
            examples.pos_vecs,
            examples.neg_vecs.reshape(-1, examples.pos_vecs.shape[1]),
            ann.take(vecs, sample_rows),
        ]
    )
    y = np.zeros(len(x_dense), dtype=np.int8)
    y[: len(examples.pos_vecs)] = 1
    x: Any = x_dense
    kw_matrix = None
    if keywords is not None:
        import scipy.sparse as sp

        kw_matrix, idf = keywords
        hasher = _hasher()
        ex_text = [p.text for p in [*examples.positives, *examples.negatives]]
        ex_kw = _tfidf(hasher.transform(ex_text), idf)
        x = sp.hstack(
            [sp.csr_matrix(x_dense), sp.vstack([ex_kw, kw_matrix[sample_rows]]) * KEYWORD_WEIGHT]
        ).tocsr()
    # random_state: liblinear visits the samples in a random order; fixed, a call is repeatable
    clf = LinearSVC(
        class_weight="balanced", C=SVM_C, max_iter=2000, tol=1e-3, dual=True, random_state=seed
    )
    clf.fit(x, y)
    coef = np.asarray(clf.coef_, dtype=np.float32).ravel()
    dim = examples.pos_vecs.shape[1]
    scores = _dot(vecs, candidates, coef[:dim])
    if kw_matrix is not None:
        kw_rows = kw_matrix if _every_row(candidates, kw_matrix.shape[0]) else kw_matrix[candidates]
        scores += np.asarray(kw_rows @ (coef[dim:] * KEYWORD_WEIGHT)).ravel()
    return scores


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


@dataclass
class RecommendResult:
    recommendations: list[Recommendation]
    positives: int
    negatives: int
    candidates: int
    method: str
    since: str | None

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.recommendations]


def recommend(
    paths: Paths,
    *,
    like: list[str] | None = None,
    unlike: list[str] | None = None,
    since: str | None = None,
    k: int = 20,
    method: str = DEFAULT_METHOD,
) -> RecommendResult:
    """The `k` catalog papers most like your papers (see the module docstring)."""
    if method not in (*METHODS, "auto"):
        raise PapersError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    examples, index, _manifest = notes_examples(paths.index, like or [], unlike or [])
    try:
        return _recommend(paths, examples, index, since, k, method)
    finally:
        index.close()


def _recommend(
    paths: Paths, examples: Examples, index: Any, since: str | None, k: int, method: str
) -> RecommendResult:
    with Catalog.open(catalog_dir(paths)) as catalog:
        merged = Embeddings.of(paths, index.manifest["fingerprint"]).load(catalog)
        if merged.dim != examples.pos_vecs.shape[1]:
            raise CatalogError("the catalog and the notes were embedded by different models")
        candidates = np.arange(len(merged.cids))
        if since:
            candidates = candidates[np.isin(merged.cids, catalog.dates(since))]
        known = _notes_keys(index)
        excluded = catalog.matching(*known)
        if excluded:
            candidates = candidates[~np.isin(merged.cids[candidates], list(excluded))]
        if not len(candidates):
            return RecommendResult([], len(examples.positives), 0, 0, method, since)
        keywords = _load_keywords(merged) if method in ("svm-kw", "auto") else None
        if method == "auto":
            method = "svm-kw" if keywords is not None else "svm"
        # Read with pread, not through the memory map: every mapped page scored would stay in
        # this process's RSS (the whole 2 GB file at arXiv scale); see ann.Rows.
        vecs = ann.Rows(merged.folder / "vectors.npy")
        try:
            scores = scores_for(method, vecs, candidates, examples, keywords=keywords)
            k = min(k, len(candidates))
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            rows = candidates[top]
            near = ann.take(vecs, rows) @ examples.pos_vecs.T
        finally:
            vecs.close()
        found = catalog.papers([int(c) for c in merged.cids[rows]])
        out = []
        for i, (row, t) in enumerate(zip(rows, top, strict=True)):
            j = int(near[i].argmax())
            out.append(
                Recommendation(
                    rank=i + 1,
                    score=float(scores[t]),
                    paper=found[int(merged.cids[row])],
                    closest=examples.positives[j],
                    closest_similarity=float(near[i, j]),
                )
            )
        return RecommendResult(
            out, len(examples.positives), len(examples.negatives), len(candidates), method, since
        )


def _notes_keys(index: Any) -> tuple[list[str], list[str], list[str]]:
    rows = index.query("SELECT arxiv, doi, norm_title FROM papers")
    return (
        [r[0] for r in rows if r[0]],
        [r[1] for r in rows if r[1]],
        [r[2] for r in rows if r[2]],
    )


def markdown_digest(result: RecommendResult) -> str:
    """A digest to read over coffee: one entry per paper, with why it is there."""
    title = "Papers for you"
    if result.since:
        title += f" since {result.since}"
    lines = [f"# {title}", ""]
    lines.append(
        f"{len(result.recommendations)} of {result.candidates} catalog papers, ranked by "
        f"`{result.method}` against {result.positives} of your papers."
    )
    lines.append("")
    for r in result.recommendations:
        p = r.paper
        link = p.url or (f"https://arxiv.org/abs/{p.arxiv}" if p.arxiv else None)
        name = f"[{_md(p.title)}]({link})" if link else _md(p.title)
        when = p.date or (str(p.year) if p.year else "")
        meta = ", ".join(x for x in [when, *p.categories[:3]] if x)
        lines.append(f"{r.rank}. **{name}**" + (f" ({meta})" if meta else ""))
        lines.append(
            f"   closest to your *{_md(r.closest.title)}* ({r.closest.where}, "
            f"cosine {r.closest_similarity:.2f})"
        )
        if p.abstract:
            lines.append(f"   > {_md(shorten(p.abstract, 400))}")
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]").replace("*", "\\*")


def result_json(result: RecommendResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, indent=2)
