"""The library's front door: `Library(root)` and the typed results every interface shares.

The CLI, and the MCP server and web page to come, are thin faces over this module: each
resolves its own input, calls one `Library` method and formats what comes back (JSON shapes
are built in `search.faces.output`). A `Library` is meant to live long: it keeps the opened index
and the loaded query encoder between calls, and picks up a new index generation (published by
a rebuild in this or another process) on the next call, without a restart.

    >>> lib = Library("~/papers")                      # doctest: +SKIP
    >>> lib.rebuild()                                  # doctest: +SKIP
    >>> for hit in lib.ask("denoising with one noisy image", k=3):  # doctest: +SKIP
    ...     print(hit.rank, hit.paper.title, hit.paper.where)
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search import query
from search.errors import (
    Ambiguous,
    ConfigError,
    DiskFull,
    FetchError,
    ImportFailed,
    IndexDamaged,
    IndexMissing,
    LockBusy,
    ModelError,
    ModelMismatch,
    NotesError,
    NotFound,
    PapersError,
    ZoteroError,
)
from search.library import Paths, library_paths
from search.readers.config import set_zotero_dir
from search.readers.records import normalise_title
from search.readers.zotero import check_data_dir
from search.storage import store

if TYPE_CHECKING:
    from search.build import Pause, Progress, RebuildReport
    from search.catalog.catalog import CatalogHit
    from search.readers.fetch import FetchReport, ProgressFn
    from search.readers.importers import ImportedFile, ImportReport

# Deferred (start-up time): the rebuild (search.build, with the notes readers and the map), the
# importers and the catalog are loaded by the methods that use them, not by every question.
# Their result types are still this module's names (PEP 562).
_DEFERRED_TYPES = {
    "RebuildReport": "search.build",
    "ImportReport": "search.readers.importers",
    "ImportedFile": "search.readers.importers",
}


def __getattr__(name: str) -> Any:
    if name in _DEFERRED_TYPES:
        module = importlib.import_module(_DEFERRED_TYPES[name])
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Ambiguous",
    "ConfigError",
    "FileReading",
    "DiskFull",
    "FetchError",
    "Hit",
    "ImportFailed",
    "ImportReport",
    "ImportedFile",
    "IndexDamaged",
    "IndexInfo",
    "IndexMissing",
    "Library",
    "LockBusy",
    "ModelError",
    "ModelMismatch",
    "MODES",
    "NotFound",
    "NotesError",
    "Paper",
    "PapersError",
    "Ranking",
    "RebuildReport",
    "Source",
    "Why",
    "ZoteroError",
]

MODES: tuple[str, ...] = query.MODES
ABSTRACTS_FILE = "abstracts.jsonl"

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default log: say nothing."""


@dataclass(frozen=True)
class Source:
    """One place a paper is mentioned: `file` relative to the library folder."""

    file: str
    line: int | None

    @property
    def where(self) -> str:
        """`notes/file.md:12` (or just the file when the line is unknown)."""
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Paper:
    """A paper as indexed: every mention of it in the notes, joined.

    `id` is stable across rebuilds (arXiv id, else DOI, else a slug of the title).
    """

    id: str
    title: str
    section: tuple[str, ...]
    authors: tuple[str, ...]
    year: int | None
    venue: str | None
    tags: tuple[str, ...]
    arxiv: str | None
    doi: str | None
    url: str | None
    abstract: str
    notes: tuple[str, ...]
    sources: tuple[Source, ...]
    aliases: tuple[str, ...] = ()  # other names it goes by ("ResNeXt")

    @property
    def note(self) -> str:
        """Everything written about the paper, as one text."""
        return " ".join(self.notes)

    @property
    def where(self) -> str:
        """`notes/file:line` of the first mention."""
        return self.sources[0].where if self.sources else ""

    @property
    def places(self) -> list[str]:
        """`notes/file:line` of every mention."""
        return [s.where for s in self.sources]

    @classmethod
    def from_row(cls, row: store.PaperRow) -> Paper:
        return cls(
            id=row.id,
            title=row.title,
            section=tuple(row.section),
            authors=tuple(row.authors),
            year=row.year,
            venue=row.venue,
            tags=tuple(row.tags),
            arxiv=row.arxiv,
            doi=row.doi,
            url=row.url,
            abstract=row.abstract,
            notes=tuple(row.notes),
            sources=tuple(Source(store.place(f), line) for f, line in row.sources),
            aliases=tuple(row.aliases),
        )


@dataclass(frozen=True)
class FileReading:
    """How one note file was read: "list of 12 papers", "one paper", "skipped", "data"."""

    file: str  # notes/<path>, or zotero:<library>
    reading: str
    reason: str
    papers: int
    unsure: str = ""  # why the reading rests on weak evidence; "" when it does not


@dataclass(frozen=True)
class Ranking:
    """Where one retriever placed a paper."""

    rank: int
    score: float


@dataclass(frozen=True)
class Why:
    """Why a paper was found: each retriever's ranking and the question's words it matched."""

    found_by: str  # "semantic", "keyword" or "both"
    semantic: Ranking | None = None
    keyword: Ranking | None = None
    terms: tuple[str, ...] | None = None

    @classmethod
    def from_explain(cls, explain: dict[str, Any]) -> Why:
        def ranking(name: str) -> Ranking | None:
            r = explain.get(name)
            return Ranking(int(r["rank"]), float(r["score"])) if r else None

        terms = explain.get("terms")
        return cls(
            found_by=str(explain.get("found_by", "")),
            semantic=ranking("semantic"),
            keyword=ranking("keyword"),
            terms=tuple(terms) if terms is not None else None,
        )


@dataclass(frozen=True)
class Hit:
    """One paper in an answer: its rank (1 = best), fused score and why it was found, and the
    PDF page (or Zotero full text) the answer was found on, if any."""

    rank: int
    score: float
    paper: Paper
    why: Why | None = None
    page_file: str | None = None  # as the user sees it: notes/paper.pdf, or a Zotero item
    page: str | None = None  # the page label
    # 0..1 for people: cosine similarity of the paper's closest passage to the question
    # (keyword mode: the share of the question's words it holds). `score` ranks; this reads.
    relevance: float = 0.0

    @property
    def where(self) -> str:
        """What to cite: the page the answer is on (`notes/paper.pdf:p.7`), else the paper's
        first mention."""
        if self.page_file is None:
            return self.paper.where
        return f"{self.page_file}:p.{self.page}" if self.page else self.page_file

    @classmethod
    def from_query(cls, hit: query.Hit) -> Hit:
        return cls(
            rank=hit.rank,
            score=hit.score,
            paper=Paper.from_row(hit.paper),
            why=Why.from_explain(hit.explain) if hit.explain else None,
            page_file=store.place(hit.page_file) if hit.page_file else None,
            page=hit.page,
            relevance=hit.relevance,
        )


@dataclass(frozen=True)
class IndexInfo:
    """What the live index generation was built from."""

    generation: str
    model: str
    built_at: str
    papers: int
    chunks: int


class Library:
    """A library folder (notes/ and index/) and everything that can be done with it.

    Args:
        root: the folder holding notes/ and index/ (None: $PAPERS_LIBRARY, else ".").
        model: the encoder to rebuild with and to check queries against (None: $PAPERS_MODEL,
            else the packaged default). Queries always use the model the index was built with.
        log: where warnings and progress lines go (default: nowhere).

    Safe to share between threads: the swap to a new index generation is locked. Use it as a
    context manager, or call `close()`, to release the opened index.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        log: Log = _quiet,
    ) -> None:
        self.paths: Paths = library_paths(root)
        self.model = model
        self.log = log
        self._searcher: query.Searcher | None = None
        self._lock = threading.Lock()

    # -- where things are -----------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def notes_dir(self) -> Path:
        return self.paths.notes

    @property
    def index_dir(self) -> Path:
        return self.paths.index

    def close(self) -> None:
        """Release the opened index (the next call opens it again)."""
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the index ------------------------------------------------------------------------
    def rebuild(
        self,
        *,
        full: bool = False,
        wait: bool = False,
        verify: bool = False,
        follow_links: bool = False,
        progress: Progress | None = None,
        pause: Pause | None = None,
    ) -> RebuildReport:
        """Bring index/ in line with notes/, embedding only what changed.

        Args:
            full: re-embed everything.
            wait: wait for a rebuild already running instead of raising LockBusy.
            verify: re-hash every note file and re-read those whose content changed even
                though their size and modification time did not.
            follow_links: follow symlinks in notes/ that lead outside the library.
            progress: `progress(total)` returns a callback advanced by chunks embedded.
            pause: called with the name of each stage reached (tests stop a rebuild there).
        """
        from search import build  # deferred: see _DEFERRED_TYPES

        return build.rebuild(
            self.paths,
            model=self.model,
            full=full,
            wait=wait,
            verify=verify,
            follow_links=follow_links,
            log=self.log,
            progress=progress,
            pause=pause,
        )

    def _current(self) -> query.Searcher:
        """The searcher over the live generation, reopened when a rebuild published another."""
        with self._lock:
            live = store.current_generation(self.paths.index)
            old = self._searcher
            if old is not None and live == old.generation:
                return old
            # The old searcher is not closed here: another thread may be answering with it right
            # now. It closes its SQLite connection when the last call using it lets it go.
            self._searcher = query.Searcher(
                self.paths.index, model=self.model, warn=self.log, previous=old
            )
            return self._searcher

    def info(self) -> IndexInfo:
        """The live generation's model, build time and size."""
        s = self._current()
        m = s.manifest
        return IndexInfo(
            generation=s.generation.name,
            model=str(m.get("model", "")),
            built_at=str(m.get("built_at", "")),
            papers=int(m.get("papers", 0)),
            chunks=int(m.get("chunks", 0)),
        )

    # -- questions ------------------------------------------------------------------------
    def ask(
        self, question: str, *, k: int = 10, section: str | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        """The `k` papers that best answer `question`, best first.

        Args:
            section: only papers under a heading containing this (case-insensitive).
            mode: "hybrid" (meaning and keywords fused), "semantic" or "keyword".
        """
        hits = self._current().ask(question, k=k, section=section, mode=mode)
        return [Hit.from_query(h) for h in hits]

    def similar(
        self,
        paper: str | Paper | Sequence[str | Paper] | None = None,
        *,
        text: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """Papers similar to an indexed paper (a title, an id or a `Paper`), to several
        together (a list of them: more like these), or to `text`.

        A paper is never among its own results. Give exactly one of `paper` and `text`.
        """
        if (paper is None) == (text is None):
            raise PapersError("give exactly one of: a paper (title or id) or a text")
        searcher = self._current()
        if text is not None:
            found = searcher.similar_to_text(text, k=k, mode=mode)
        else:
            assert paper is not None
            given = [paper] if isinstance(paper, (str, Paper)) else list(paper)
            if not given:
                raise PapersError("give at least one paper (title or id)")
            rows = {}
            for p in given:
                row = searcher.find(p.id if isinstance(p, Paper) else p)
                rows[row.pid] = row  # the same paper named twice counts once
            found = searcher.similar_to_papers(list(rows.values()), k=k, mode=mode)
        return [Hit.from_query(h) for h in found]

    def show(self, title_or_id: str) -> Paper:
        """One paper by id, arXiv id, DOI or (loosely matched) title.

        Raises:
            NotFound: nothing close (the message lists the closest titles).
            Ambiguous: several papers match equally well.
        """
        return Paper.from_row(self._current().find(title_or_id))

    def papers(self) -> list[Paper]:
        """Every indexed paper, in the order of its first mention in the notes."""
        return [Paper.from_row(r) for r in self._current().all_papers()]

    # -- the catalog: papers you have not noted (search.catalog.catalog) ---------------------------
    def ask_catalog(self, question: str, *, k: int = 10) -> list[CatalogHit]:
        """Catalog papers that answer `question` (by meaning), with the notes index's encoder."""
        question = question.strip()
        if not question:
            raise PapersError("the question is empty")
        s = self._current()
        qvec = s.encoder.encode([question], query=True)[0]
        from search.catalog.catalog import search_catalog  # deferred: see _DEFERRED_TYPES

        return search_catalog(self.paths, str(s.manifest["fingerprint"]), qvec, k)

    def similar_catalog(
        self, title_or_id: str | None = None, *, text: str | None = None, k: int = 10
    ) -> list[CatalogHit]:
        """Catalog papers close to one of your papers (never that paper) or to a text."""
        s = self._current()
        exclude: set[str] = set()
        if title_or_id is not None:
            paper = s.find(title_or_id)
            qvec = s.paper_vector(paper.pid)
            if qvec is None:
                raise PapersError(
                    f"{paper.title} has no vectors in the index: run `papers rebuild`"
                )
            if paper.arxiv:
                exclude.add(f"arxiv:{paper.arxiv}")
            if paper.doi:
                exclude.add(f"doi:{paper.doi}")
            exclude.add("title:" + normalise_title(paper.title))
        else:
            if not text or not text.strip():
                raise PapersError("the text is empty")
            qvec = s.text_vector(text)
        from search.catalog.catalog import search_catalog  # deferred: see _DEFERRED_TYPES

        return search_catalog(self.paths, str(s.manifest["fingerprint"]), qvec, k, exclude)

    def file_readings(self) -> list[FileReading]:
        """How each note file was read by the last rebuild (a list of N papers, one paper,
        skipped, data) and why, in path order."""
        return [
            FileReading(
                file=store.place(str(r["file"])),
                reading=str(r.get("reading") or ""),
                reason=str(r.get("reason") or ""),
                papers=int(r.get("papers") or 0),
                unsure=str(r.get("unsure") or ""),
            )
            for r in self._current().file_readings()
        ]

    # -- notes ----------------------------------------------------------------------------
    def import_files(self, files: Sequence[str | os.PathLike[str]]) -> ImportReport:
        """Copy paper lists (BibTeX, JSON lines) into notes/imported/ as readable files."""
        from search.readers.importers import import_files  # deferred: see _DEFERRED_TYPES

        return import_files([Path(f) for f in files], self.paths.notes, log=self.log)

    def add_zotero(self, data_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Read this Zotero data directory (holding zotero.sqlite) on every rebuild, by
        recording it in the library's papers.toml. Returns (the directory resolved, the config
        file written).

        Raises:
            ZoteroError: the directory holds no zotero.sqlite.
            ConfigError: papers.toml is not valid.
        """
        found = check_data_dir(Path(data_dir))
        return found, set_zotero_dir(self.paths.root, found)

    def fetch_abstracts(
        self,
        *,
        source: str = "arxiv",
        limit: int | None = None,
        base_url: str | None = None,
        contact: str | None = None,
        delay: float | None = None,
        progress: ProgressFn | None = None,
    ) -> FetchReport:
        """Look up abstracts of papers in the notes that have none; append them to
        notes/abstracts.jsonl as they arrive (an interrupted run resumes where it stopped)."""
        # lazy: fetch imports httpx (100-400 ms here), which no other command needs
        from search import build  # deferred: see _DEFERRED_TYPES
        from search.readers.fetch import fetch_abstracts

        papers = build.collect_papers(self.paths.notes)
        return fetch_abstracts(
            papers,
            self.abstracts_file,
            source=source,
            limit=limit,
            base_url=base_url,
            contact=contact,
            delay=delay,
            progress=progress,
        )

    @property
    def abstracts_file(self) -> Path:
        """Where fetched abstracts are appended."""
        return self.paths.notes / ABSTRACTS_FILE
