"""`papers rebuild`: read notes/, embed what changed, and swap in a new index generation."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import store, vectors
from .chunking import CHUNKING_VERSION, PaperText, chunk, chunk_key, paper_text
from .encoder import Encoder, ModelSpec, resolve_model
from .errors import IndexDamaged, LockBusy, NotesError, PapersError
from .library import Paper, Paths, merge
from .records import FileResult, Problem, Record, normalise_title

Log = Callable[[str], None]
# progress(total) returns a callback advanced by the number of chunks just embedded
Progress = Callable[[int], Callable[[int], None]]

EMBED_BATCH = 256


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
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    reembed_reason: str | None = None
    nothing_changed: bool = False
    model: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- reading notes -----------------------------------------------------------------------------


def read_file(path: Path, rel: str) -> FileResult:
    """Read one file under notes/ by its kind; never raises for bad content."""
    if path.suffix.lower() in (".bib", ".jsonl"):
        from .importers import read_note_data

        return read_note_data(path, rel)
    from .notes import read_markdown_file

    return read_markdown_file(path, rel)


def _rel(path: Path, notes: Path) -> str:
    return path.relative_to(notes).as_posix()


def check_notes_dir(notes: Path) -> None:
    if not notes.is_dir():
        raise NotesError(f"no notes folder at {notes}: create it and put your notes there")


def collect_papers(notes_dir: Path) -> list[Paper]:
    """Every paper in the notes, parsed afresh (no index needed)."""
    from .notes import list_note_files

    check_notes_dir(notes_dir)
    files, _ = list_note_files(notes_dir)
    records: list[Record] = []
    for f in files:
        records.extend(read_file(f, _rel(f, notes_dir)).records)
    return merge(records)


def _records_to_json(records: list[Record]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in records], ensure_ascii=False)


def _records_from_json(text: str) -> list[Record]:
    return [Record(**d) for d in json.loads(text)]


# -- the model's cheap side: tokenizer and settings, without torch ------------------------------


@dataclass
class ModelInfo:
    spec: ModelSpec
    fingerprint: str
    stat_key: str
    max_tokens: int
    query_prompt: str
    document_prompt: str
    spans: Callable[[str], list[tuple[int, int]]]

    def settings(self) -> dict[str, Any]:
        """Everything that changes the vectors: if any differs, every chunk is re-embedded."""
        return {
            "fingerprint": self.fingerprint,
            "chunking_version": CHUNKING_VERSION,
            "max_tokens": self.max_tokens,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "normalize": True,
        }


def model_info(spec: ModelSpec, previous: dict[str, Any] | None, log: Log) -> ModelInfo:
    from .encoder import prompts_of, read_model_config, token_spans_with

    if spec.registered:
        enc = load_encoder(spec, "", None, log)
        return ModelInfo(
            spec,
            spec.fingerprint(),
            spec.stat_key(),
            enc.max_tokens,
            enc.query_prompt,
            enc.document_prompt,
            enc.token_spans,
        )
    stat_key = spec.stat_key()
    if previous and previous.get("model_stat_key") == stat_key and previous.get("fingerprint"):
        fingerprint = previous["fingerprint"]
    else:
        fingerprint = spec.fingerprint()
    cfg = read_model_config(spec.path)
    max_tokens = int(cfg.get("max_seq_length") or 0)
    query_prompt, document_prompt = prompts_of(cfg.get("prompts") or {})
    tok_file = spec.path / "tokenizer.json"
    if max_tokens and tok_file.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tok_file))
        tok.no_truncation()
        tok.no_padding()
        return ModelInfo(
            spec,
            fingerprint,
            stat_key,
            max_tokens,
            query_prompt,
            document_prompt,
            lambda text: token_spans_with(tok, text),
        )
    # No standalone tokenizer file: ask sentence-transformers (slow, but correct).
    enc = load_encoder(spec, fingerprint, None, log)
    return ModelInfo(
        spec,
        fingerprint,
        stat_key,
        enc.max_tokens,
        enc.query_prompt,
        enc.document_prompt,
        enc.token_spans,
    )


def load_encoder(spec: ModelSpec, fingerprint: str, index_dir: Path | None, log: Log) -> Encoder:
    """The encoder for building: the exported ONNX one when present (no torch), else
    sentence-transformers."""
    if spec.registered:
        from .encoder import registered_encoder

        return registered_encoder(spec)
    if index_dir is not None:
        from .query_encoder import load_onnx

        onnx = load_onnx(index_dir, fingerprint)
        if onnx is not None:
            return onnx
    from .encoder import STEncoder

    log(f"loading {spec.name} with sentence-transformers…")
    return STEncoder.load(spec)


# -- locking -------------------------------------------------------------------------------------


@contextmanager
def rebuild_lock(index_dir: Path, wait: bool) -> Iterator[None]:
    """Only one rebuild at a time; the lock dies with its process (even on SIGKILL)."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / "rebuild.lock"))
    holder = index_dir / "rebuild.lock.holder"
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        who = "another process"
        try:
            info = json.loads(holder.read_text(encoding="utf-8"))
            who = f"pid {info['pid']} (started {info['started']})"
        except (OSError, ValueError, KeyError):
            pass
        raise LockBusy(
            f"another rebuild is running: {who} holds {index_dir / 'rebuild.lock'}; "
            "wait for it or pass --wait"
        ) from None
    try:
        holder.write_text(
            json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}),
            encoding="utf-8",
        )
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


# -- the rebuild -----------------------------------------------------------------------------------


def _open_previous(index_dir: Path, log: Log) -> store.Index | None:
    try:
        return store.Index.open(index_dir)
    except PapersError as e:
        if not isinstance(e, IndexDamaged):
            return None
        log(f"previous index is damaged ({e}); building from scratch")
        return None


def rebuild(
    paths: Paths,
    *,
    model: str | None = None,
    full: bool = False,
    wait: bool = False,
    log: Log = lambda s: None,
    progress: Progress | None = None,
) -> RebuildReport:
    """Bring index/ in line with notes/, embedding only what changed.

    Raises:
        NotesError: notes/ missing or holding no notes.
        ModelError: the model cannot be found or loaded.
        LockBusy: another rebuild is running (unless `wait`).
    """
    start = time.perf_counter()
    check_notes_dir(paths.notes)
    spec = resolve_model(model)
    with rebuild_lock(paths.index, wait):
        store.prune(paths.index)
        previous = _open_previous(paths.index, log)
        try:
            report = _rebuild_locked(paths, spec, previous, full, log, progress)
        finally:
            if previous is not None:
                previous.close()
        store.prune(paths.index)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _rebuild_locked(
    paths: Paths,
    spec: ModelSpec,
    previous: store.Index | None,
    full: bool,
    log: Log,
    progress: Progress | None,
) -> RebuildReport:
    from .notes import list_note_files

    report = RebuildReport(model=spec.name)
    old_manifest = previous.manifest if previous else None
    info = model_info(spec, old_manifest, log)
    settings = info.settings()

    reuse = previous is not None and not full
    if previous is not None and not full:
        old_settings = {k: old_manifest.get(k) for k in settings} if old_manifest else {}
        if old_settings != settings:
            changed = sorted(k for k in settings if old_settings.get(k) != settings[k])
            report.reembed_reason = _reason(changed, old_manifest or {}, spec)
            reuse = False
    elif full:
        report.reembed_reason = "--full"
    if report.reembed_reason:
        log(f"re-embedding everything: {report.reembed_reason}")

    # 1. files: parse only what changed since the previous generation
    files, walk_problems = list_note_files(paths.notes)
    problems: list[Problem] = list(walk_problems)
    old_files = previous.files() if previous is not None else {}
    records: list[Record] = []
    file_rows = []
    stats_same = previous is not None and len(files) == len(old_files)
    for f in files:
        rel = _rel(f, paths.notes)
        try:
            st = f.stat()
        except OSError as e:
            problems.append(Problem(rel, None, f"cannot read: {e.strerror or e}"))
            stats_same = False
            continue
        cached = old_files.get(rel)
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            recs_json, probs_json = cached[2], cached[3]
            file_records = _records_from_json(recs_json)
            problems.extend(Problem(**p) for p in json.loads(probs_json))
        else:
            stats_same = False
            result = read_file(f, rel)
            report.files_parsed += 1
            file_records = result.records
            problems.extend(result.problems)
            recs_json = _records_to_json(file_records)
            probs_json = json.dumps([dataclasses.asdict(p) for p in result.problems])
        records.extend(file_records)
        file_rows.append((rel, st.st_size, st.st_mtime_ns, recs_json, probs_json))
    report.files = len(file_rows)
    report.problems = [str(p) for p in problems]
    for p in problems:
        log(f"skipped {p}")
    if not files:
        raise NotesError(f"no notes in {paths.notes}: add .md, .bib or .jsonl files")
    if not records:
        raise NotesError(f"no papers found in the notes under {paths.notes}")

    encoder_ready = _encoder_exported(paths.index, info, spec)
    if reuse and stats_same and previous is not None and encoder_ready:
        report.nothing_changed = True
        report.papers = int(previous.manifest.get("papers", 0))
        report.chunks = int(previous.manifest.get("chunks", 0))
        report.papers_unchanged = report.papers
        report.chunks_unchanged = report.chunks
        return report

    papers = merge(records)
    _build_generation(
        paths, spec, info, previous if reuse else None, papers, file_rows, report, log, progress
    )
    return report


def _reason(changed: list[str], old: dict[str, Any], spec: ModelSpec) -> str:
    if "fingerprint" in changed:
        return f"the model changed ({old.get('model', '?')} → {spec.name})"
    return "settings that change the vectors changed: " + ", ".join(changed)


def _encoder_exported(index_dir: Path, info: ModelInfo, spec: ModelSpec) -> bool:
    if spec.registered:
        return True
    from .query_encoder import encoder_dir

    return (encoder_dir(index_dir, info.fingerprint) / "encoder.json").is_file()


def _build_generation(
    paths: Paths,
    spec: ModelSpec,
    info: ModelInfo,
    previous: store.Index | None,
    papers: list[Paper],
    file_rows: list[tuple[str, int, int, str, str]],
    report: RebuildReport,
    log: Log,
    progress: Progress | None,
) -> None:
    # Old chunks, to keep the vectors of unchanged text.
    old_by_key: dict[str, int] = {}
    old_paper_chunks: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    old_ids: set[str] = set()
    old_vids: list[int] = []
    next_vid = 0
    if previous is not None:
        next_vid = int(previous.manifest.get("next_vid", 0))
        pid_to_id: dict[int, tuple[str, str]] = {}
        for pid, pid_str, text_hash in previous.query("SELECT pid, id, text_hash FROM papers"):
            pid_to_id[pid] = (pid_str, text_hash)
            old_ids.add(pid_str)
        grouped: dict[int, list[tuple[int, str]]] = {}
        for vid, key, pid in previous.query("SELECT vid, key, pid FROM chunks ORDER BY pid, ord"):
            old_by_key.setdefault(key, vid)
            old_vids.append(vid)
            grouped.setdefault(pid, []).append((vid, key))
        for pid, chunks in grouped.items():
            if pid in pid_to_id:
                pid_str, text_hash = pid_to_id[pid]
                old_paper_chunks[pid_str] = (text_hash, chunks)

    # Which chunks each paper needs; reuse old vectors by key.
    kept: list[tuple[int, int, int]] = []  # (old vid, new pid, ord)
    fresh: list[tuple[int, int, int, str, str]] = []  # (new vid, new pid, ord, key, text)
    claimed: set[int] = set()
    paper_rows = []
    for pid, paper in enumerate(papers, start=1):
        text = paper_text(paper)
        digest = text.digest()
        old = old_paper_chunks.get(paper.id)
        if old and old[0] == digest:
            report.papers_unchanged += 1
            for ord_, (vid, _key) in enumerate(old[1]):
                kept.append((vid, pid, ord_))
                claimed.add(vid)
            paper_rows.append((pid, paper, text, digest))
            continue
        if paper.id in old_ids:
            report.papers_changed += 1
        else:
            report.papers_added += 1
        for ord_, piece in enumerate(_chunks_of(text, info)):
            key = chunk_key(info.fingerprint, piece)
            vid = old_by_key.get(key)
            if vid is not None and vid not in claimed:
                kept.append((vid, pid, ord_))
                claimed.add(vid)
            else:
                fresh.append((next_vid, pid, ord_, key, piece))
                next_vid += 1
        paper_rows.append((pid, paper, text, digest))
    new_ids = {p.id for p in papers}
    report.papers_removed = len(old_ids - new_ids)
    removed = [vid for vid in old_vids if vid not in claimed]
    report.chunks_unchanged = len(kept)
    report.chunks_added = len(fresh)
    report.chunks_removed = len(removed)
    report.papers = len(papers)
    report.chunks = len(kept) + len(fresh)

    tmp = store.new_generation_dir(paths.index)
    db = store.create_db(tmp / store.DB_NAME)
    try:
        _write_rows(db, previous, paper_rows, kept, fresh, file_rows)
        encoder: Encoder | None = None
        if fresh or not _encoder_exported(paths.index, info, spec):
            encoder = load_encoder(spec, info.fingerprint, paths.index, log)
        index = _vectors(previous, removed, fresh, encoder, log, progress)
        vectors.write(index, tmp / store.FAISS_NAME)
        store.write_manifest(
            db,
            {
                "model": spec.name,
                "model_path": str(spec.path),
                "model_stat_key": info.stat_key,
                **info.settings(),
                "dim": int(index.d),
                "index_type": "flat",
                "papers": len(papers),
                "chunks": int(index.ntotal),
                "next_vid": next_vid,
                "faiss_bytes": (tmp / store.FAISS_NAME).stat().st_size,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "complete": True,
            },
        )
        db.commit()
        db.close()
        if encoder is not None:
            _export_encoder(paths.index, info, spec, encoder, log)
        store.publish(paths.index, tmp)
    except BaseException:
        db.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _chunks_of(text: PaperText, info: ModelInfo) -> list[str]:
    return chunk(text, info.spans, info.max_tokens, info.document_prompt)


def _write_rows(
    db: sqlite3.Connection,
    previous: store.Index | None,
    paper_rows: list[tuple[int, Paper, PaperText, str]],
    kept: list[tuple[int, int, int]],
    fresh: list[tuple[int, int, int, str, str]],
    file_rows: list[tuple[str, int, int, str, str]],
) -> None:
    db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", file_rows)
    db.executemany(
        "INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                pid,
                p.id,
                p.title,
                normalise_title(p.title),
                json.dumps(p.section, ensure_ascii=False),
                p.arxiv,
                p.doi,
                p.url,
                json.dumps(p.authors, ensure_ascii=False),
                p.year,
                p.venue,
                json.dumps(p.tags, ensure_ascii=False),
                p.abstract,
                json.dumps(p.notes, ensure_ascii=False),
                digest,
            )
            for pid, p, _text, digest in paper_rows
        ),
    )
    db.executemany(
        "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?)",
        (
            (pid, i, r.file, r.line, json.dumps(r.section, ensure_ascii=False), r.note)
            for pid, p, _t, _d in paper_rows
            for i, r in enumerate(p.records)
        ),
    )
    if kept:
        assert previous is not None
        db.execute("ATTACH DATABASE ? AS old", (f"{previous.gen / store.DB_NAME}",))
        db.executemany(
            "INSERT INTO chunks SELECT vid, key, ?, ?, text FROM old.chunks WHERE vid = ?",
            ((pid, ord_, vid) for vid, pid, ord_ in kept),
        )
        db.commit()
        db.execute("DETACH DATABASE old")
    db.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?)",
        ((vid, key, pid, ord_, text) for vid, pid, ord_, key, text in fresh),
    )
    from .keywords import fill_keyword_index

    fill_keyword_index(db, ((pid, p, text) for pid, p, text, _d in paper_rows))


def _vectors(
    previous: store.Index | None,
    removed: list[int],
    fresh: list[tuple[int, int, int, str, str]],
    encoder: Encoder | None,
    log: Log,
    progress: Progress | None,
) -> Any:
    index = previous.vectors if previous is not None else None
    if fresh:
        assert encoder is not None
        if index is None:
            index = vectors.new_index(encoder.dim)
        vectors.update(
            index, np.asarray(removed, dtype=np.int64), np.zeros((0, index.d)), np.zeros(0)
        )
        tick = progress(len(fresh)) if progress else None
        for start in range(0, len(fresh), EMBED_BATCH):
            batch = fresh[start : start + EMBED_BATCH]
            vecs = encoder.encode([b[4] for b in batch])
            vectors.update(
                index,
                np.zeros(0, dtype=np.int64),
                vecs,
                np.asarray([b[0] for b in batch], dtype=np.int64),
            )
            if tick:
                tick(len(batch))
    elif index is not None:
        vectors.update(
            index, np.asarray(removed, dtype=np.int64), np.zeros((0, index.d)), np.zeros(0)
        )
    else:
        raise NotesError("nothing to embed")
    return index


def _export_encoder(
    index_dir: Path, info: ModelInfo, spec: ModelSpec, encoder: Encoder, log: Log
) -> None:
    """Keep an ONNX copy of the encoder beside the index so queries need no torch."""
    if spec.registered:
        return
    from .query_encoder import export_for_queries

    try:
        export_for_queries(index_dir, info.fingerprint, encoder, log)
    except Exception as e:  # a query can still fall back to sentence-transformers
        log(f"warning: could not export the encoder for fast queries: {e}")
