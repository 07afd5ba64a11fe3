"""One index generation's rows and vectors: which chunks are kept, carried or embedded, the
embedding in batches, the rows of papers, and the manifest that marks the generation complete.

`build_generation` writes a whole library into a new SQLite file; search.storage.patch updates a
copy of the previous generation after an edit with the same pieces. Both fill a `RebuildReport`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.encoders.encoder import Encoder, ModelSpec
from search.encoders.index_encoder import ModelInfo
from search.errors import NotesError
from search.library import Paper, Paths, merge_keys
from search.readers.incremental import Origins
from search.readers.records import (
    Problem,
    normalise_title,
)
from search.storage import store, vectors
from search.storage.chunking import (
    MAX_EMBED_CHARS,
    PaperText,
    chunk_key,
    chunk_pages,
    full_length,
    paper_text,
)
from search.storage.keywords import keyword_rows

Log = Callable[[str], None]
# progress(total) returns a callback advanced by the number of chunks just embedded
Progress = Callable[[int], Callable[[int], None]]

# pause(stage) is called as a rebuild reaches each stage; tests pass one that stops there so
# they can SIGKILL the process at a known point. Stages, in order: locked, parsed, embedded
# (after the first batch), written (new generation complete in index/tmp-*), synced (checksums
# written), renamed (now index/gen-*, CURRENT not yet replaced), published.
Pause = Callable[[str], None]

# Chunks handed to the encoder at once. It sorts them by token length so that its batches carry
# little padding: the bigger the window the less padding (a few thousand chunks of text and ids
# are a few MB; memory grows with the window, not with the library).
EMBED_BATCH = 2048


@dataclass
class RebuildReport:
    """What a rebuild did (all counts are papers or chunks)."""

    files: int = 0
    files_parsed: int = 0
    problems: list[str] = field(default_factory=list)
    papers: int = 0
    chunks: int = 0
    papers_added: int = 0
    papers_changed: int = 0
    papers_removed: int = 0
    papers_unchanged: int = 0
    # chunks: new = unchanged + changed + added; old = unchanged + changed + removed.
    # "changed" pairs a new chunk of a changed paper with one of its old chunks that went away.
    chunks_added: int = 0
    chunks_changed: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    chunks_embedded: int = 0  # added + changed: what the encoder had to run on
    reembed_reason: str | None = None
    # Files whose papers fell to under half, one line each (see readers.incremental.report_shrunk).
    shrunk: list[str] = field(default_factory=list)
    nothing_changed: bool = False
    model: str = ""
    seconds: float = 0.0


@dataclass
class ModelPlan:
    """The model that embeds this rebuild, and whether the previous generation's vectors may
    be kept (`reuse`: same model and vector settings, no --full)."""

    info: ModelInfo
    settings: dict[str, Any]
    reuse: bool


def open_writer(tmp: Path, previous: store.Index | None, copy: bool) -> store.GenerationWriter:
    """The new generation's SQLite file: empty, or (`copy`, for a patch) a copy of the
    previous one."""
    if not copy or previous is None:
        return store.GenerationWriter.create(tmp / store.DB_NAME)
    return store.GenerationWriter.copy_of(previous.gen, tmp / store.DB_NAME)


@dataclass
class Built:
    """A generation's vectors, written last: the FAISS index, its IVF training size, the next
    free chunk id, and how many papers it holds."""

    index: Any
    trained_on: int | None
    next_vid: int
    papers: int


def write_generation(
    db: store.GenerationWriter,
    tmp: Path,
    built: Built,
    spec: ModelSpec,
    model: ModelPlan,
    parser: str,
) -> None:
    """The manifest, which marks the SQLite file complete (the vector file is written).
    `parser`: the readers' version, which the next rebuild's parse cache must match."""
    index = built.index
    db.write_manifest(
        {
            "model": spec.name,
            "model_path": str(spec.path),
            "model_stat_key": model.info.stat_key,
            **model.settings,
            "parser": parser,
            "dim": int(index.d),
            "index_type": vectors.kind(index),
            "ivf_trained_on": built.trained_on,
            "papers": built.papers,
            "chunks": int(index.ntotal),
            "next_vid": built.next_vid,
            "faiss_bytes": (tmp / store.FAISS_NAME).stat().st_size,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "complete": True,
        },
    )
    db.commit()
    db.close()


@dataclass
class OldChunks:
    """The previous generation's chunks: by paper (text hash, vids in order) and by key."""

    by_paper: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    by_key: dict[str, list[int]] = field(default_factory=dict)
    # (title, normalised title) by paper id: normalise_title is slow (ftfy), so reuse it
    norm_titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # paper id -> pid
    total: int = 0

    @classmethod
    def read(cls, previous: store.Index, pids: set[int] | None = None) -> OldChunks:
        """All papers' chunks, or those of `pids` only (a patch)."""
        out = cls()
        pid_to_id = {}
        papers_sql = "SELECT pid, id, text_hash, title, norm_title FROM papers"
        chunks_sql = "SELECT vid, key, pid FROM chunks"
        if pids is None:
            paper_rows = previous.query(papers_sql)
            chunk_rows = previous.query(chunks_sql + " ORDER BY pid, ord")
        else:
            paper_rows, chunk_rows = [], []
            wanted = sorted(pids)
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                marks = ",".join("?" * len(part))
                paper_rows += previous.query(f"{papers_sql} WHERE pid IN ({marks})", part)
                chunk_rows += previous.query(
                    f"{chunks_sql} WHERE pid IN ({marks}) ORDER BY pid, ord", part
                )
        for pid, pid_str, text_hash, title, norm in paper_rows:
            pid_to_id[pid] = (pid_str, text_hash)
            out.norm_titles[pid_str] = (title, norm)
            out.pids[pid_str] = pid
        grouped: dict[int, list[int]] = {}
        for vid, key, pid in chunk_rows:
            out.by_key.setdefault(key, []).append(vid)
            grouped.setdefault(pid, []).append(vid)
            out.total += 1
        for pid, (pid_str, text_hash) in pid_to_id.items():
            out.by_paper[pid_str] = (text_hash, grouped.get(pid, []))
        return out


def build_generation(
    db: store.GenerationWriter,
    paths: Paths,
    model: ModelPlan,
    previous: store.Index | None,
    papers: list[Paper],
    where: Origins,
    report: RebuildReport,
    log: Log,
    progress: Progress | None,
    pause: Pause,
) -> Built:
    """Write papers and chunks into `db`, embedding only new chunk texts, in batches (memory
    grows with the batch, not the library).

    Without `model.reuse` (--full, another model or settings) every chunk is embedded again,
    but papers are still counted against `previous` so the report says what changed in the
    notes.
    """
    old = OldChunks.read(previous) if previous is not None else OldChunks()
    # The chunks whose vectors may be kept: none when everything is re-embedded.
    keep = old if model.reuse else OldChunks()
    pids = list(range(1, len(papers) + 1))
    plan = plan_papers(papers, old, model.reuse, report)
    insert_papers(db, papers, pids, plan.digests, old.norm_titles, where)
    plan_chunks(plan, papers, pids, keep, model.info, report, log)
    embedder = Embedder(db, paths.index, model.info, log, progress, pause)
    if previous is not None and model.reuse:
        embedder.index = previous.vectors
    next_vid = int(previous.manifest.get("next_vid", 0)) if previous is not None else 0
    next_vid = embedder.embed(plan, papers, pids, next_vid)
    count_chunks(report, plan, keep, old.total, embedder.embedded, model.reuse)
    if plan.kept:
        assert previous is not None
        db.carry_chunks_from(previous.gen, plan.kept)
    if embedder.index is None:
        raise NotesError("nothing to embed")
    gone = unclaimed(keep, plan.claimed)
    if len(gone):
        embedder.index.remove_ids(gone)
    trained_on = previous.manifest.get("ivf_trained_on") if previous and model.reuse else None
    index, trained_on = vectors.finish(embedder.index, trained_on, log)
    return Built(index, trained_on, next_vid, len(papers))


@dataclass
class ChunkPlan:
    """Where each new paper's chunks come from: kept whole (same paper, same text), carried
    one by one from an old chunk with the same key, or embedded."""

    digests: list[str]  # text hash of each paper
    unchanged: list[list[int] | None]  # each paper's old vids, when all are kept as they are
    claimed: set[int] = field(default_factory=set)  # old vids the new generation uses
    kept: list[tuple[int, int, int]] = field(default_factory=list)  # (old vid, new pid, ord)
    fresh: dict[int, list[int]] = field(default_factory=dict)  # paper (index) -> ords to embed
    # (chunks embedded, old vids) of each changed paper: pairs "changed" chunks in the report
    changed_papers: list[tuple[int, list[int]]] = field(default_factory=list)
    to_embed: int = 0


def plan_papers(
    papers: list[Paper], old: OldChunks, reuse: bool, report: RebuildReport
) -> ChunkPlan:
    """Unchanged papers (same id, same text) keep their vectors. They claim them first, so a
    changed paper reusing a chunk by key can never take a vector that is still in use."""
    plan = ChunkPlan(digests=[], unchanged=[])
    for paper in papers:
        digest = paper_text(paper).digest()
        plan.digests.append(digest)
        before = old.by_paper.get(paper.id)
        same = before is not None and before[0] == digest
        if same and reuse and before is not None and before[1]:
            plan.unchanged.append(before[1])
            plan.claimed.update(before[1])
        else:
            plan.unchanged.append(None)
        if same:
            report.papers_unchanged += 1
        elif before is not None:
            report.papers_changed += 1
        else:
            report.papers_added += 1
    report.papers = len(papers)
    report.papers_removed = len(old.by_paper.keys() - {p.id for p in papers})
    return plan


def plan_chunks(
    plan: ChunkPlan,
    papers: list[Paper],
    pids: list[int],
    keep: OldChunks,
    info: ModelInfo,
    report: RebuildReport,
    log: Log,
) -> None:
    """Chunk the changed papers; a chunk whose key (model + text) an unclaimed old chunk has
    takes that chunk's vector; the rest are to be embedded."""
    for at, (paper, vids) in enumerate(zip(papers, plan.unchanged, strict=True)):
        pid = pids[at]
        if vids is not None:
            plan.kept.extend((vid, pid, ord_) for ord_, vid in enumerate(vids))
            continue
        report_cut(paper, report, log)
        ords: list[int] = []
        for ord_, (piece, _f, _page) in enumerate(chunks_of(paper_text(paper), info)):
            key = chunk_key(info.fingerprint, piece)
            vid = next((v for v in keep.by_key.get(key, ()) if v not in plan.claimed), None)
            if vid is None:
                ords.append(ord_)
            else:
                plan.kept.append((vid, pid, ord_))
                plan.claimed.add(vid)
        if ords:
            plan.fresh[at] = ords
            plan.to_embed += len(ords)
        before = keep.by_paper.get(paper.id)
        if before is not None:
            plan.changed_papers.append((len(ords), before[1]))


# A chunk waiting for its vector: (vid, pid, ord, key, text, file, page)
_Pending = tuple[int, int, int, str, str, str | None, str | None]


class Embedder:
    """Embeds the planned chunks a batch at a time, adding vectors and chunk rows as it goes
    (texts are chunked again rather than kept: memory grows with the batch, not with the
    library). The model is loaded only if something is to be embedded."""

    def __init__(
        self,
        db: store.GenerationWriter,
        index_dir: Path,
        info: ModelInfo,
        log: Log,
        progress: Progress | None,
        pause: Pause,
    ):
        self.db, self.index_dir, self.info, self.log = db, index_dir, info, log
        self.progress, self.pause = progress, pause
        self.index: Any = None  # the FAISS index vectors are added to (made on first use)
        self.encoder: Encoder | None = None
        self.embedded = 0
        self.pending: list[_Pending] = []
        self.tick: Callable[[int], None] | None = None

    def embed(self, plan: ChunkPlan, papers: list[Paper], pids: list[int], next_vid: int) -> int:
        """Embed plan.fresh, numbering new chunks from `next_vid`; returns the next free vid."""
        self.tick = self.progress(plan.to_embed) if self.progress and plan.to_embed else None
        for at, ords in plan.fresh.items():
            pieces = chunks_of(paper_text(papers[at]), self.info)
            for ord_ in ords:
                piece, file, page = pieces[ord_]
                key = chunk_key(self.info.fingerprint, piece)
                self.pending.append((next_vid, pids[at], ord_, key, piece, file, page))
                next_vid += 1
                if len(self.pending) >= EMBED_BATCH:
                    self.flush()
        if self.pending:
            self.flush()
        return next_vid

    def flush(self) -> None:
        if self.encoder is None:
            self.encoder = self.info.encoder(self.index_dir, self.log)
        if self.index is None:
            self.index = vectors.new_index(self.encoder.dim)
        pending, reported = self.pending, 0

        def advance(n: int) -> None:
            nonlocal reported
            reported += n
            if self.tick:
                self.tick(n)

        vecs = self.encoder.encode([p[4] for p in pending], progress=advance)
        vectors.update(
            self.index, np.zeros(0, np.int64), vecs, np.asarray([p[0] for p in pending], np.int64)
        )
        self.db.add_chunks(
            {"vid": vid, "key": key, "pid": pid, "ord": ord_, "text": t, "file": f, "page": pg}
            for vid, pid, ord_, key, t, f, pg in pending
        )
        first = self.embedded == 0
        self.embedded += len(pending)
        if self.tick and reported < len(pending):
            self.tick(len(pending) - reported)  # an encoder that does not report progress
        self.pending = []
        if first:
            self.pause("embedded")


def count_chunks(
    report: RebuildReport,
    plan: ChunkPlan,
    keep: OldChunks,
    old_total: int,
    embedded: int,
    reuse: bool,
) -> None:
    """new = unchanged + changed + added; old = unchanged + changed + removed."""
    removed = keep.total - len(plan.claimed)
    changed = sum(
        min(n, sum(v not in plan.claimed for v in vids)) for n, vids in plan.changed_papers
    )
    report.chunks_unchanged = len(plan.kept)
    report.chunks_changed = changed
    report.chunks_added = embedded - changed
    # Re-embedding everything replaces every old chunk: the two sums above still hold.
    report.chunks_removed = removed - changed if reuse else old_total
    report.chunks_embedded = embedded
    report.chunks = len(plan.kept) + embedded


def unclaimed(keep: OldChunks, claimed: set[int]) -> np.ndarray:
    """The old chunks no new chunk uses: their vectors and rows go."""
    if keep.total - len(claimed) <= 0:
        return np.zeros(0, np.int64)
    return np.fromiter(
        (vid for vids in keep.by_key.values() for vid in vids if vid not in claimed),
        dtype=np.int64,
    )


def report_cut(paper: Paper, report: RebuildReport, log: Log) -> None:
    """Say so when a paper's text is longer than what is embedded (said when it is chunked)."""
    length = full_length(paper)
    if length <= MAX_EMBED_CHARS:
        return
    first = paper.records[0]
    problem = Problem(
        first.file,
        first.line,
        f'"{paper.title}": its text is {length:,} characters; only the first '
        f"{MAX_EMBED_CHARS:,} are embedded and keyword-indexed",
    )
    report.problems.append(str(problem))
    log(f"cut {problem}")


def insert_papers(
    db: store.GenerationWriter,
    papers: list[Paper],
    pids: list[int],
    digests: list[str],
    old_norm: dict[str, tuple[str, str]],
    where: Origins,
    *,
    fresh: bool = True,
) -> None:
    """Every row of these papers (pids given): the paper, its aliases, sources, keywords,
    where its records came from and the keys they join by. `fresh`: a new keyword table."""

    def norm(p: Paper) -> str:
        before = old_norm.get(p.id)
        return (
            before[1] if before is not None and before[0] == p.title else normalise_title(p.title)
        )

    db.add_papers(
        {
            "pid": pid,
            "id": p.id,
            "title": p.title,
            "norm_title": norm(p),
            "section": json.dumps(p.section, ensure_ascii=False),
            "arxiv": p.arxiv,
            "doi": p.doi,
            "url": p.url,
            "authors": json.dumps(p.authors, ensure_ascii=False),
            "year": p.year,
            "venue": p.venue,
            "tags": json.dumps(p.tags, ensure_ascii=False),
            "abstract": p.abstract,
            "notes": json.dumps(p.notes, ensure_ascii=False),
            "text_hash": digest,
        }
        for pid, p, digest in zip(pids, papers, digests, strict=True)
    )
    db.add_aliases(
        {"pid": pid, "alias": alias, "norm": normalise_title(alias)}
        for pid, p in zip(pids, papers, strict=True)
        for alias in p.aliases
    )
    db.add_sources(
        {
            "pid": pid,
            "ord": i,
            "file": r.file,
            "line": r.line,
            "section": json.dumps(r.section, ensure_ascii=False),
            "note": r.note,
        }
        for pid, p in zip(pids, papers, strict=True)
        for i, r in enumerate(p.records)
    )
    db.add_keywords(
        keyword_rows((pid, p, paper_text(p)) for pid, p in zip(pids, papers, strict=True)),
        fresh=fresh,
    )
    db.add_paper_records(
        (*where[id(r)], pid) for pid, p in zip(pids, papers, strict=True) for r in p.records
    )
    db.add_merge_keys(
        (key, pid)
        for pid, p in zip(pids, papers, strict=True)
        for key in dict.fromkeys(k for r in p.records for k in merge_keys(r))
    )


def chunks_of(text: PaperText, info: ModelInfo) -> list[tuple[str, str | None, str | None]]:
    return chunk_pages(text, info.spans, info.max_tokens, info.document_prompt)
