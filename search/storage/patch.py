"""Patching a copy of the previous generation after an edit: only the papers that changed files
touch, or that their records now join, are merged again; every other row stays as it is.

A patch must give exactly what a whole rebuild would (tests/test_patch.py checks it): where it
cannot be sure (ids that may collide, a cache that does not match its generation, more than
PATCH_AT_MOST of the library touched), `plan_patch` says None and the rebuild merges it all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from search.library import Paper, Paths, merge, merge_keys, paper_id
from search.readers.folder import (
    FileReading,
    link_resolver,
)
from search.readers.incremental import FileRecords, Origins, ParseCache, reading_row
from search.storage import store, vectors
from search.storage.generation import (
    Built,
    Embedder,
    ModelPlan,
    OldChunks,
    Pause,
    Progress,
    RebuildReport,
    count_chunks,
    insert_papers,
    plan_chunks,
    plan_papers,
    unclaimed,
)

Log = Callable[[str], None]


# A patch re-merges the papers changed files touch; past this share of the library a whole
# rebuild writes about as much and is simpler.
PATCH_AT_MOST = 0.5


@dataclass
class Patch:
    """A rebuild that updates a copy of the previous generation: only the papers records of
    changed files went into, or now join, are merged again; every other row stays as it is."""

    changed: set[str]  # files (paths under notes/) whose records changed, came or went
    affected: set[int]  # old pids merged again: their rows are replaced
    papers: list[Paper]  # what their records (old and new) merge into now
    where: Origins


def plan_patch(
    previous: store.Index | None,
    model: ModelPlan,
    cache: ParseCache,
    readings: list[FileReading],
    files: FileRecords,
) -> Patch | None:
    """What a patch would re-merge, or None when the whole library must be merged again (no
    usable previous generation, new vectors, or a change a patch cannot reproduce exactly).

    Mentions join by shared keys (library.merge_keys). A paper no changed file touches, and
    that no new record shares a key with, is the same component of the same records as
    before: only the others (`affected`) are merged again, from their records in unchanged
    files plus every record of the changed files, in the order a whole merge sees them."""
    if previous is None or not model.reuse or cache.previous is None:
        return None
    if not previous.has_tables(store.PATCH_TABLES):
        return None  # an index from before paper_records and merge_keys
    changed = _changed_files(previous, cache, readings)
    at = {rel: i for i, (rel, _recs) in enumerate(files)}
    new = [(at[rel], pos) for rel in changed if rel in at for pos in range(len(files[at[rel]][1]))]
    keys = {k for i, pos in new for k in merge_keys(files[i][1][pos])}
    affected = previous.pids_of_files(changed) | previous.pids_with_keys(keys)
    if len(affected) > PATCH_AT_MOST * int(previous.manifest.get("papers", 0)):
        return None
    old = [(at.get(f), pos) for f, pos in previous.records_of(affected) if f not in changed]
    if any(i is None or pos >= len(files[i][1]) for i, pos in old):
        return None  # the previous generation does not match its parse cache: merge all
    order = sorted({*new, *((i, pos) for i, pos in old if i is not None)})
    records = [files[i][1][pos] for i, pos in order]
    where = {id(files[i][1][pos]): (files[i][0], pos) for i, pos in order}
    papers = merge(records)
    if _ids_may_collide(previous, affected, papers):
        return None
    return Patch(changed, affected, papers, where)


def _changed_files(
    previous: store.Index, cache: ParseCache, readings: list[FileReading]
) -> set[str]:
    """Files whose records may differ from the previous generation's: parsed again, gone,
    read differently because of other files (promoted to one paper, trimmed), or holding a
    note link that resolves differently now that files came or went."""
    now = {r.rel for r in readings}
    before = set(cache.files)
    changed = before - now
    old_link = new_link = None
    if now != before:
        old_link, new_link = link_resolver(sorted(before)), link_resolver(sorted(now))
    for r in readings:
        row = json.loads(json.dumps(reading_row(r), ensure_ascii=False))
        if not r.from_cache or r.final is not r.base or previous.file_reading(r.rel) != row:
            changed.add(r.rel)
        elif old_link is not None and new_link is not None:
            targets = (rec.extra.get("note_file") for rec in r.final.records)
            if any(t and old_link(t) != new_link(t) for t in targets):
                changed.add(r.rel)
    return changed


def _twin_base(paper: str) -> str | None:
    """ "x" for "x-2", "x-3"...: merge numbers papers that would share an id."""
    head, _, tail = paper.rpartition("-")
    return head if head and tail.isdigit() and int(tail) >= 2 else None


def _ids_may_collide(previous: store.Index, affected: set[int], papers: list[Paper]) -> bool:
    """merge numbers papers that would share an id (x, x-2...) in order of first mention,
    which a patch does not see: it gives way to a whole merge when an id it makes or drops
    could be such a twin of a kept paper's (rare: papers with no title key, arXiv id or DOI in
    common rarely share an id)."""
    if any(p.id != paper_id(p.records) for p in papers):
        return True  # twins among the papers merged again
    mine = {p.id for p in papers} | {row[1] for row in previous.pid_ids(affected)}
    mine |= {base for paper in mine if (base := _twin_base(paper))}
    for paper in mine:
        for pid, other in previous.ids_from(paper):
            if pid not in affected and (other == paper or _twin_base(other) == paper):
                return True
    return False


def patch_generation(
    db: store.GenerationWriter,
    paths: Paths,
    model: ModelPlan,
    previous: store.Index,
    patch: Patch,
    report: RebuildReport,
    log: Log,
    progress: Progress | None,
    pause: Pause,
) -> Built:
    """Update the copy of the previous generation in `db`: the affected papers' rows are
    replaced, their chunks kept, moved or embedded, and the vectors of chunks gone removed;
    every other row stays as it is."""
    old = OldChunks.read(previous, patch.affected)
    pids = _patch_pids(previous, patch.papers, old)
    plan = plan_papers(patch.papers, old, True, report)
    db.delete_papers(patch.affected)
    insert_papers(db, patch.papers, pids, plan.digests, old.norm_titles, patch.where, fresh=False)
    plan_chunks(plan, patch.papers, pids, old, model.info, report, log)
    embedder = Embedder(db, paths.index, model.info, log, progress, pause)
    embedder.index = previous.vectors
    next_vid = embedder.embed(plan, patch.papers, pids, int(previous.manifest.get("next_vid", 0)))
    count_chunks(report, plan, old, old.total, embedder.embedded, True)
    _count_untouched(report, previous, old)
    db.move_chunks(plan.kept)
    gone = unclaimed(old, plan.claimed)
    db.delete_chunks(int(v) for v in gone)
    if len(gone):
        embedder.index.remove_ids(gone)
    trained_on = previous.manifest.get("ivf_trained_on")
    index, trained_on = vectors.finish(embedder.index, trained_on, log)
    return Built(index, trained_on, next_vid, report.papers)


def _patch_pids(previous: store.Index, papers: list[Paper], old: OldChunks) -> list[int]:
    """A paper that keeps its id keeps its pid (and its place in `papers list`); new papers
    are numbered after every old one."""
    next_pid = int(previous.query("SELECT coalesce(max(pid), 0) FROM papers")[0][0]) + 1
    pids = []
    for p in papers:
        if p.id in old.pids:
            pids.append(old.pids[p.id])
        else:
            pids.append(next_pid)
            next_pid += 1
    return pids


def _count_untouched(report: RebuildReport, previous: store.Index, old: OldChunks) -> None:
    """The papers and chunks a patch did not look at are unchanged."""
    papers = int(previous.manifest.get("papers", 0)) - len(old.by_paper)
    chunks = int(previous.manifest.get("chunks", 0)) - old.total
    report.papers += papers
    report.papers_unchanged += papers
    report.chunks += chunks
    report.chunks_unchanged += chunks
