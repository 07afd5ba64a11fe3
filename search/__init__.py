"""papers: semantic search over a researcher's paper notes.

The public API (see `search.api`):

    from search import Library
    lib = Library("~/papers")
    hits = lib.ask("denoising with one noisy image", k=5)
"""

from .api import (
    MODES,
    Ambiguous,
    DiskFull,
    FetchError,
    Hit,
    ImportedFile,
    ImportFailed,
    ImportReport,
    IndexDamaged,
    IndexInfo,
    IndexMissing,
    Library,
    LockBusy,
    ModelError,
    ModelMismatch,
    NotesError,
    NotFound,
    Paper,
    PapersError,
    Ranking,
    RebuildReport,
    Source,
    Why,
    ZoteroError,
)
from .version import __version__

__all__ = [
    "MODES",
    "Ambiguous",
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
    "NotFound",
    "NotesError",
    "Paper",
    "PapersError",
    "Ranking",
    "RebuildReport",
    "Source",
    "Why",
    "ZoteroError",
    "__version__",
]
