"""Keyword retrieval: an SQLite FTS5 index over papers, ranked with bm25().

The table is rebuilt with the rest of each index generation (see `keyword_rows`), so the
keywords and the vectors always describe the same papers. Words are lower-cased, stripped of
accents and Porter-stemmed on both sides ("losses" finds "loss"); a title match counts
`TITLE_WEIGHT` times a body match.

Chinese and Japanese are written without spaces (and Korean glues particles to words), so
unicode61 would make a whole CJK sentence one token that no question matches. Runs of CJK
characters are therefore indexed, and looked up, as overlapping character bigrams ("对比学习"
→ "对比 比学 学习"), the usual CJK approach of Lucene's CJKAnalyzer: it finds two-character
words, which the FTS5 `trigram` tokenizer cannot (it needs three characters per term), and
keeps the Porter stemming English needs. Measured against a trigram table in
bench/cjk_keywords.py (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from search.storage.chunking import PaperText

if TYPE_CHECKING:
    from search.library import Paper
    from search.storage.store import Index

# Title matches count more than body matches: a title says what the paper is. Tuned on the
# SciFact train split (docs/benchmarks.md); 1.0 to 5.0 are within 0.01 nDCG@10 of each other.
TITLE_WEIGHT = 3.0
BODY_WEIGHT = 1.0
# A long query (a whole abstract, for `papers similar`) keeps only its rarest words.
MAX_QUERY_TERMS = 64

_WORD = re.compile(r"\w+", re.UNICODE)
# Han (with extensions and compatibility forms), kana, Hangul syllables and jamo.
_CJK = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u3131-\u318f"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character pairs of a CJK run; a single character stays as it is."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def split_cjk(text: str) -> str:
    """`text` with every CJK run replaced by its bigrams, space-separated (what is indexed)."""
    # max() scans in C: most text has no character as high as the first CJK block.
    if text.isascii() or max(text) < "\u2e80":
        return text
    return _CJK_RUN.sub(lambda m: " " + " ".join(cjk_bigrams(m.group(0))) + " ", text)


# Words that say nothing about a paper's topic. An OR query over every word of a question would
# otherwise match almost every paper on "the" or "of" and let bm25 sort out the noise.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)


def keyword_rows(
    rows: Iterable[tuple[int, Paper, PaperText]],
) -> Iterator[tuple[int, str, str]]:
    """What the FTS5 table holds for each paper (rowid = pid): (pid, title, body); the table is
    written by `store.GenerationWriter.add_keywords`."""
    for pid, p, text in rows:
        yield (
            pid,
            split_cjk(p.title),
            split_cjk(
                " ".join([*p.section, *p.authors, text.body, *(t for _, _, t in text.pages)])
            ),
        )


def query_terms(text: str) -> list[str]:
    """The words of `text` that a keyword search looks for: lower-cased, once each, in order,
    without stopwords (unless the text is nothing but stopwords)."""
    words = list(dict.fromkeys(_WORD.findall(split_cjk(text.lower()))))
    kept = [w for w in words if w not in STOPWORDS and w != "_"]
    return kept or words


def fts_query(terms: Iterable[str]) -> str:
    """Terms as an FTS5 query matching any of them (quoted, so no word is an operator)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _doc_count(index: Index, term: str) -> int:
    rows = index.query(
        "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (fts_query([term]),)
    )
    return int(rows[0][0]) if rows else 0


def _rarest(index: Index, terms: list[str], n: int) -> list[str]:
    """The `n` terms found in the fewest papers (but in at least one), in their text order."""
    counts = {t: _doc_count(index, t) for t in terms}
    present = [t for t in terms if counts[t] > 0]
    keep = set(sorted(present, key=lambda t: counts[t])[:n])
    return [t for t in present if t in keep]


def keyword_search(
    index: Index, text: str, k: int, title_weight: float = TITLE_WEIGHT
) -> list[tuple[int, float]]:
    """Top-k (pid, score) by bm25; higher is better."""
    terms = query_terms(text)
    if len(terms) > MAX_QUERY_TERMS:
        terms = _rarest(index, terms, MAX_QUERY_TERMS)
    if not terms:
        return []
    rows = index.query(
        "SELECT rowid, bm25(papers_fts, ?, ?) AS s FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY s LIMIT ?",
        (title_weight, BODY_WEIGHT, fts_query(terms), k),
    )
    return [(int(pid), -float(s)) for pid, s in rows]


def matched_terms(index: Index, text: str, pids: list[int]) -> dict[int, list[str]]:
    """For each paper in `pids`, the words of `text` (stemmed as the index does) it contains."""
    out: dict[int, list[str]] = {pid: [] for pid in pids}
    if not pids:
        return out
    marks = ",".join("?" * len(pids))
    sql = f"SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? AND rowid IN ({marks})"
    for term in query_terms(text)[: MAX_QUERY_TERMS * 4]:
        for (pid,) in index.query(sql, (fts_query([term]), *pids)):
            out[int(pid)].append(term)
    return out
