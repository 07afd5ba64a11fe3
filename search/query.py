"""Answering: `ask` a question, find papers `similar` to one, look papers up by title or id."""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.encoders.encoder import MODEL_ENV, Encoder, is_default_model
from search.encoders.index_encoder import indexed_model, open_encoder
from search.errors import Ambiguous, ModelMismatch, NotFound, PapersError
from search.readers.records import (
    looks_like_arxiv_id,
    normalise_doi,
    normalise_title,
    parse_arxiv_id,
    scrub_surrogates,
)
from search.storage import vectors
from search.storage.chunking import PaperText, chunk
from search.storage.keywords import keyword_search, matched_terms, query_terms, split_cjk
from search.storage.store import Index, PaperRow, place

MODES = ("hybrid", "semantic", "keyword")
# How many papers each retriever hands to the fusion (more when -k asks for more).
POOL = 100
# At most this many matched words are listed per result.
MAX_TERMS_SHOWN = 20
# At most this many characters of a question or of the text given to `similar` are used
# (--text, --file, or a paper's own text): ~5k tokens, about 20 chunks to embed, well under a
# second. A megabyte of text took minutes. Longer text is cut, with a warning.
MAX_QUERY_CHARS = 20_000
# A title lookup must be at least this close (rapidfuzz WRatio, 0-100) to count.
TITLE_CUTOFF = 85.0
# Two candidates closer than this are a tie: the user must say which.
TIE_MARGIN = 2.0

Warn = Callable[[str], None]


@dataclass
class Hit:
    """One paper in an answer, as ranked against one index generation (see `search.api.Hit`
    for the public, generation-independent form)."""

    rank: int
    score: float
    paper: PaperRow
    explain: dict[str, Any] = field(default_factory=dict)
    # The PDF page (or Zotero full text) the answer was found on: its file and page label.
    page_file: str | None = None
    page: str | None = None
    # 0..1, for people: the question's cosine similarity to the paper's closest passage
    # (keyword mode: the share of the question's words the paper holds). See `relevance`.
    relevance: float = 0.0

    @property
    def where(self) -> str:
        """The page the answer is on (`notes/paper.pdf:p.7`), else the paper's first mention."""
        if self.page_file is None:
            return self.paper.where
        return f"{place(self.page_file)}:p.{self.page}" if self.page else place(self.page_file)


@dataclass(frozen=True)
class Fusion:
    """How `hybrid` combines the semantic and the keyword rankings.

    method "rrf": sum of weight / (k + rank) (reciprocal-rank fusion);
    method "minmax": sum of weight * score scaled to 0..1 within each ranking (0 if absent);
    method "zscore": sum of weight * (score - mean) / std within each ranking (absent: the
    ranking's lowest).
    """

    method: str = "rrf"
    k: float = 60.0
    semantic_weight: float = 1.0
    keyword_weight: float = 1.0


# Plain reciprocal-rank fusion, the usual starting point (kept for comparison).
PLAIN_RRF = Fusion("rrf", 60.0)
# The default, chosen on the SciFact train split (docs/benchmarks.md, "Answer quality"): each
# retriever's scores as z-scores over its top POOL, added with equal weights. It beat every RRF
# (k 1..100, weighted or not) and matched the best min-max blend with no parameter to tune.
DEFAULT_FUSION = Fusion("zscore", 0.0, 0.5, 0.5)
# A single retriever: its own scores, unchanged.
SINGLE = Fusion("single")


def _normalised(ranking: list[tuple[int, float]], method: str) -> tuple[dict[int, float], float]:
    """Scores rescaled within one ranking, and the value for a paper the ranking lacks."""
    if not ranking:
        return {}, 0.0
    scores = np.asarray([s for _, s in ranking], dtype=np.float64)
    if method == "minmax":
        lo, hi = float(scores.min()), float(scores.max())
        span = hi - lo
        vals = (scores - lo) / span if span > 0 else np.ones_like(scores)
        return dict(zip([p for p, _ in ranking], vals.tolist(), strict=True)), 0.0
    mean, std = float(scores.mean()), float(scores.std())
    # One score (or all equal): nothing to spread, but being found still beats being absent.
    vals = (scores - mean) / std if std > 0 else np.ones_like(scores)
    if std == 0:
        return dict(zip([p for p, _ in ranking], vals.tolist(), strict=True)), 0.0
    return dict(zip([p for p, _ in ranking], vals.tolist(), strict=True)), float(vals.min())


def fuse(
    sem: list[tuple[int, float]], kw: list[tuple[int, float]], fusion: Fusion
) -> list[tuple[int, float, dict[str, Any]]]:
    """Combine two rankings (pid, score) best first into (pid, fused score, explanation)."""
    why: dict[int, dict[str, Any]] = {}
    for name, ranking in (("semantic", sem), ("keyword", kw)):
        for i, (pid, s) in enumerate(ranking):
            why.setdefault(pid, {})[name] = {"rank": i + 1, "score": round(s, 4)}
    for entry in why.values():
        found = [n for n in ("semantic", "keyword") if n in entry]
        entry["found_by"] = "both" if len(found) == 2 else found[0]
    weighted = ((sem, fusion.semantic_weight), (kw, fusion.keyword_weight))
    fused: dict[int, float] = {}
    if fusion.method == "single":
        fused = dict(sem or kw)
    elif fusion.method == "rrf":
        for ranking, w in weighted:
            for i, (pid, _) in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + w / (fusion.k + i + 1)
    elif fusion.method in ("minmax", "zscore"):
        norms = [(_normalised(r, fusion.method), w) for r, w in weighted]
        for pid in why:
            fused[pid] = sum(w * vals.get(pid, absent) for (vals, absent), w in norms)
    else:
        raise PapersError(f"unknown fusion method {fusion.method!r}")
    order = sorted(fused.items(), key=lambda x: (-x[1], x[0]))
    return [(pid, s, why[pid]) for pid, s in order]


class Searcher:
    """An opened index generation plus, loaded only when needed, its query encoder.

    A context manager: `with Searcher(index_dir) as s: ...` closes the index at the end.
    """

    def __init__(
        self,
        index_dir: Path,
        model: str | None = None,
        warn: Warn = lambda s: None,
        previous: Searcher | None = None,
    ):
        """Open the live generation of `index_dir`. `previous`, a searcher over an earlier
        generation, hands on its loaded encoder when both were built with the same one (a
        model load costs seconds); the caller still closes it."""
        self.index_dir = index_dir
        self.index = Index.open(index_dir)
        self.warn = warn
        self.model = model or os.environ.get(MODEL_ENV)
        self._encoder: Encoder | None = None
        if previous is not None and _same_encoder(previous.index.manifest, self.index.manifest):
            self._encoder = previous._encoder
        self.fusion = DEFAULT_FUSION
        # Per thread: a Library shared by a server's threads asks through one Searcher.
        self._local = threading.local()

    @property
    def best_chunk(self) -> dict[int, int]:
        """pid -> vid of its best chunk in this thread's last semantic ranking (to show its
        page); per thread, so two questions answered at once never swap their pages."""
        found: dict[int, int] | None = getattr(self._local, "best_chunk", None)
        if found is None:
            found = self._local.best_chunk = {}
        return found

    @best_chunk.setter
    def best_chunk(self, value: dict[int, int]) -> None:
        self._local.best_chunk = value

    @property
    def generation(self) -> Path:
        """The generation folder this searcher reads."""
        return self.index.gen

    @property
    def manifest(self) -> dict[str, Any]:
        """What the generation was built from (model, settings, sizes, build time)."""
        return self.index.manifest

    def all_papers(self) -> list[PaperRow]:
        """Every paper of the generation, in the order of first mention."""
        return self.index.all_papers()

    def file_readings(self) -> list[dict[str, Any]]:
        """How each note file was read by the build of this generation."""
        return self.index.file_readings()

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            # Only encoding text needs the index's own model: `show`, keyword search and
            # `similar` to an indexed paper (its stored vectors) work whatever is asked for.
            check_model(self.index.manifest, self.model)
            spec, fingerprint, prompts = indexed_model(self.index.manifest)
            self._encoder = open_encoder(
                spec,
                self.index_dir,
                for_query=True,
                fingerprint=fingerprint,
                prompts=prompts,
                log=self.warn,
            )
        return self._encoder

    # -- retrieval -------------------------------------------------------------------------
    def semantic(self, qvec: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Papers ranked by their best chunk's cosine similarity to `qvec`."""
        total = int(self.index.vectors.ntotal)
        scores, ids = vectors.search(self.index.vectors, qvec.reshape(1, -1), min(total, n * 4))
        vids = [int(v) for v in ids[0] if v >= 0]
        pid_of = self.index.chunk_pids(vids)
        best: dict[int, float] = {}
        for vid, s in zip(ids[0], scores[0], strict=False):
            pid = pid_of.get(int(vid))
            if pid is not None and pid not in best:
                best[pid] = float(s)
                self.best_chunk[pid] = int(vid)
        return sorted(best.items(), key=lambda x: -x[1])[:n]

    def keyword(self, text: str, n: int) -> list[tuple[int, float]]:
        return keyword_search(self.index, text, n)

    def rank(
        self, text: str, qvec: np.ndarray | None, mode: str, n: int
    ) -> list[tuple[int, float, dict[str, Any]]]:
        """(pid, score, explanation) best first, by `mode`."""
        if mode not in MODES:
            raise PapersError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        self.best_chunk = {}
        sem = self.semantic(qvec, n) if mode != "keyword" and qvec is not None else []
        kw = self.keyword(text, n) if mode != "semantic" else []
        return fuse(sem, kw, self.fusion if mode == "hybrid" else SINGLE)[:n]

    def hits(
        self,
        ranked: list[tuple[int, float, dict[str, Any]]],
        k: int,
        section: str | None,
        exclude: set[int] | None = None,
        text: str = "",
        qvec: np.ndarray | None = None,
    ) -> list[Hit]:
        pids = [pid for pid, _, _ in ranked if not exclude or pid not in exclude]
        rows = self.index.papers(pids)
        out: list[Hit] = []
        for pid, score, why in ranked:
            row = rows.get(pid)
            if row is None or (exclude and pid in exclude):
                continue
            if section and not in_section(row, section):
                continue
            out.append(Hit(rank=len(out) + 1, score=score, paper=row, explain=dict(why)))
            if len(out) == k:
                break
        if out:
            self._pages(out, text)
        if text and out:
            terms = matched_terms(self.index, text, [h.paper.pid for h in out])
            for h in out:
                h.explain["terms"] = terms[h.paper.pid][:MAX_TERMS_SHOWN]
        self._relevance(out, text, qvec)
        return out

    def _relevance(self, hits: list[Hit], text: str, qvec: np.ndarray | None) -> None:
        """Give each hit a score people can read, 0 to 1, whatever the mode ranked it by.

        The fused score (a sum of z-scores) and bm25 are unbounded and comparable within one
        answer only; cosine similarity is the same scale for every question. With a query
        vector: the cosine of the paper's closest passage (the semantic ranking's own score,
        else computed from its stored vectors), clipped at 0. Without one (keyword mode): the
        share of the question's words the paper holds.
        """
        if qvec is None:
            wanted = len(query_terms(text)) if text else 0
            for h in hits:
                found = len(h.explain.get("terms") or [])
                h.relevance = min(1.0, found / wanted) if wanted else 0.0
            return
        for h in hits:
            sem = h.explain.get("semantic")
            if sem is not None:
                score = float(sem["score"])
            else:
                vids = self.index.paper_vids(h.paper.pid)
                vecs = vectors.reconstruct(self.index.vectors, vids) if vids else None
                score = float((vecs @ qvec).max()) if vecs is not None else 0.0
            h.relevance = min(1.0, max(0.0, score))

    def _pages(self, hits: list[Hit], text: str) -> None:
        """Give each hit found on a page that page: the page of its best chunk in the semantic
        ranking (none if that chunk is not from a page: the answer is in the notes), else,
        for a paper found by keywords alone, the page chunk holding most words of `text`."""
        chunks = self.index.page_chunks([h.paper.pid for h in hits])
        terms = query_terms(text) if text else []
        for h in hits:
            candidates = chunks.get(h.paper.pid)
            if not candidates:
                continue
            best = self.best_chunk.get(h.paper.pid)
            chosen = next((c for c in candidates if c[0] == best), None)
            if best is None and terms:
                texts = [split_cjk(c[3].lower()) for c in candidates]
                counts = [sum(t in body for t in terms) for body in texts]
                if max(counts) > 0:
                    chosen = candidates[counts.index(max(counts))]
            if chosen is not None:
                h.page_file, h.page = chosen[1], chosen[2]

    def _capped(self, text: str, what: str) -> str:
        if len(text) <= MAX_QUERY_CHARS:
            return text
        self.warn(
            f"warning: the {what} is {len(text):,} characters; only the first "
            f"{MAX_QUERY_CHARS:,} characters are used"
        )
        return text[:MAX_QUERY_CHARS]

    def _pool(self, k: int, section: str | None) -> int:
        # A section filter drops papers after ranking, so rank everything to still find k.
        # Otherwise a fixed depth per retriever, so that `-k 10` shows the top 10 of `-k 100`.
        return int(self.index.manifest.get("papers", k)) if section else max(k, POOL)

    # -- commands --------------------------------------------------------------------------
    def ask(
        self, question: str, k: int = 10, section: str | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        question = self._capped(_valid_text(question).strip(), "question")
        if not question:
            raise PapersError("the question is empty")
        qvec = None
        if mode != "keyword":
            qvec = self.encoder.encode([question], query=True)[0]
        ranked = self.rank(question, qvec, mode, self._pool(k, section))
        return self.hits(ranked, k, section, text=question, qvec=qvec)

    def find(self, title_or_id: str) -> PaperRow:
        """A paper by id, arXiv id, DOI or (fuzzy) title."""
        query = _valid_text(title_or_id).strip()
        titles = self.index.titles()
        is_arxiv, is_doi = looks_like_arxiv_id(query), _looks_like_doi(query)
        arxiv = parse_arxiv_id(query) if is_arxiv else None
        doi = normalise_doi(query)
        for pid, _title, pid_str, a, d, _norm in titles:
            if query == pid_str or (arxiv and a == arxiv) or (doi and d == doi):
                return self.index.papers([pid])[pid]
        # An id names one paper: if it is not here, a title that merely shares its digits
        # or the word "arXiv" is not an answer.
        if is_arxiv:
            what = f"arXiv:{arxiv}" if arxiv else f'"{query}" (no arXiv id in it)'
            raise NotFound(f"{what} is not in the library")
        if is_doi:
            raise NotFound(f"DOI {doi or query} is not in the library")
        # The start of a title, as people quote it ("Self2Self", "Proxy Anchor Loss"): fuzzy
        # scores punish the missing rest, so whole-word prefixes are matched first.
        key = normalise_title(query)
        # Another name the notes give the paper (`# [Title](url) (ResNeXt)`), said in full.
        named = {pid for pid, names in self.index.aliases().items() for _, n in names if n == key}
        if len(named) == 1 and not any(norm == key for *_, norm in titles):
            pid = named.pop()
            return self.index.papers([pid])[pid]
        if key:
            starts = [
                (pid, t) for pid, t, _, _, _, norm in titles if (norm + " ").startswith(key + " ")
            ]
            if len(starts) == 1:
                return self.index.papers([starts[0][0]])[starts[0][0]]
            if len(starts) > 1 and not any(normalise_title(t) == key for _, t in starts):
                names = "; ".join(f'"{t}"' for _, t in starts[:5])
                raise Ambiguous(f'"{query}" starts several titles: {names}; give more of it')
        from rapidfuzz import fuzz, process, utils  # lazy: only a fuzzy title lookup needs it

        choices = {pid: title for pid, title, _, _, _, _ in titles}
        found = process.extract(
            query, choices, scorer=fuzz.WRatio, processor=utils.default_process, limit=5
        )
        # WRatio scores a short query against the best-aligned part of a long title, so
        # "Deep Residual Learning for Image Recognition" scored 90 against five unrelated
        # titles. A candidate must also hold the query's words (each within a typo).
        words = _title_words(query)
        good = [f for f in found if f[1] >= TITLE_CUTOFF and _holds_words(f[0], words)]
        if not good:
            related = [f for f in found if _shares_a_word(f[0], words)]
            near = "; ".join(f'"{t}"' for t, _, _ in related[:3])
            raise NotFound(f'no paper titled "{query}"' + (f"; closest: {near}" if near else ""))
        exact = [f for f in good if utils.default_process(f[0]) == utils.default_process(query)]
        if len(exact) == 1:
            return self.index.papers([exact[0][2]])[exact[0][2]]
        ties = [f for f in good if f[1] >= good[0][1] - TIE_MARGIN]
        if len(ties) > 1:
            names = "; ".join(f'"{t}"' for t, _, _ in ties)
            raise Ambiguous(f'"{query}" matches several papers: {names}; give more of the title')
        return self.index.papers([good[0][2]])[good[0][2]]

    def paper_vector(self, pid: int) -> np.ndarray | None:
        """The mean of a paper's stored chunk vectors (unit length), None if it has none."""
        vids = self.index.paper_vids(pid)
        return _mean(vectors.reconstruct(self.index.vectors, vids)) if vids else None

    def text_vector(self, text: str) -> np.ndarray:
        """A text's vector as `similar --text` makes it: the mean of its chunks' vectors."""
        text = self._capped(_valid_text(text).strip(), "text")
        if not text:
            raise PapersError("the text is empty")
        enc = self.encoder
        pieces = chunk(PaperText(head="", body=text), enc.token_spans, enc.max_tokens)
        return _mean(enc.encode([p.strip() for p in pieces]))

    def similar_to_paper(self, paper: PaperRow, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        # Keyword mode needs no vector: don't load the FAISS file for nothing.
        qvec = self.paper_vector(paper.pid) if mode != "keyword" else None
        # The paper's own text only picks keywords: cut quietly (its vectors are stored).
        text = " ".join([paper.title, *paper.notes, paper.abstract])[:MAX_QUERY_CHARS]
        ranked = self.rank(text, qvec, mode, max(k + 1, POOL))
        return self.hits(ranked, k, None, exclude={paper.pid}, text=text, qvec=qvec)

    def similar_to_papers(
        self, papers: list[PaperRow], k: int = 10, mode: str = "hybrid"
    ) -> list[Hit]:
        """Papers like these together (none of them among the results): the mean of their
        vectors, each paper weighing the same, and their words for the keyword side."""
        if len(papers) == 1:
            return self.similar_to_paper(papers[0], k, mode)
        qvec = None
        if mode != "keyword":
            found = [v for p in papers if (v := self.paper_vector(p.pid)) is not None]
            qvec = _mean(np.stack(found)) if found else None
        # Each paper's own text picks keywords, a fair share of the cap each.
        share = MAX_QUERY_CHARS // len(papers)
        text = " ".join(" ".join([p.title, *p.notes, p.abstract])[:share] for p in papers)
        exclude = {p.pid for p in papers}
        ranked = self.rank(text, qvec, mode, max(k + len(papers), POOL))
        return self.hits(ranked, k, None, exclude=exclude, text=text, qvec=qvec)

    def similar_to_text(self, text: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        text = self._capped(_valid_text(text).strip(), "text")
        qvec = self.text_vector(text)
        ranked = self.rank(text, qvec, mode, max(k, POOL))
        return self.hits(ranked, k, None, text=text, qvec=qvec)


def _title_words(text: str) -> list[str]:
    """The words of a title that say something (no stopwords), lower-cased."""
    return query_terms(normalise_title(text))


def _holds_words(title: str, words: list[str]) -> bool:
    """True if every word of `words` is in `title`, each exactly or within a typo."""
    from rapidfuzz import fuzz  # lazy: only a fuzzy title lookup needs it

    have = set(_title_words(title))
    return all(w in have or any(fuzz.ratio(w, h) >= 80 for h in have) for w in words)


def _shares_a_word(title: str, words: list[str]) -> bool:
    return bool(set(words) & set(_title_words(title)))


def _valid_text(text: str) -> str:
    # Undecodable bytes in a command-line argument arrive as lone surrogates, which the
    # tokenizer, SQLite and the terminal all refuse: read them as U+FFFD.
    return scrub_surrogates(text)


def _mean(vecs: np.ndarray) -> np.ndarray:
    v = vecs.mean(axis=0)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _same_encoder(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("model", "fingerprint", "query_prompt", "document_prompt", "max_tokens")
    return all(old.get(k) == new.get(k) for k in keys)


def _looks_like_doi(text: str) -> bool:
    return bool(re.fullmatch(r"(doi:\s*|https?://(dx\.)?doi\.org/)?10\.\d{4,9}/\S+", text, re.I))


def in_section(row: PaperRow, section: str) -> bool:
    """True if `section` (case-insensitive) names one of the paper's headings, or a part of one."""
    want = section.casefold()
    return any(want in s.casefold() for s in row.section)


def check_model(manifest: dict[str, Any], requested: str | None) -> None:
    """Refuse to query an index with a model other than the one that built it."""
    if not requested:
        return
    built = manifest.get("model")
    if requested == built or (is_default_model(requested) and is_default_model(built)):
        return
    p = Path(requested).expanduser()
    if p.exists() and str(p.resolve()) == manifest.get("model_path"):
        return
    # The suggested command is pasted into a shell: quote what the user gave.
    raise ModelMismatch(
        f"the index was built with {built}, not {requested}: "
        f"run `papers rebuild --model {shlex.quote(requested)}` first"
    )
