"""Exceptions the library raises; the CLI turns each into one line on stderr.

Also how a full disk is recognised (`disk_full_error`), in one place for the rebuild and the
catalog, so both say "the disk is full" rather than a traceback.
"""

import errno
import sqlite3


class PapersError(Exception):
    """Base class: a problem the user can act on (never a bug)."""


class NotesError(PapersError):
    """The notes folder is missing, empty or unreadable."""


class IndexMissing(PapersError):
    """No index has been built yet."""


class IndexDamaged(PapersError):
    """The index on disk is truncated, corrupt or incomplete."""


def damaged(what: str) -> IndexDamaged:
    """The error for a damaged index: what is wrong, and what to do about it."""
    return IndexDamaged(f"the index is damaged ({what}): run `papers rebuild` to rebuild it")


class ModelMismatch(PapersError):
    """The index was built with another encoder than the one asked for."""


class ModelError(PapersError):
    """The encoder could not be loaded."""


class NotFound(PapersError):
    """A title or id matches no indexed paper (the message lists the closest)."""


class Ambiguous(PapersError):
    """A title matches several papers equally well (the message lists them)."""


class LockBusy(PapersError):
    """Another rebuild holds the lock."""


class ImportFailed(PapersError):
    """A file given to `papers import` cannot be read at all."""


class FetchError(PapersError):
    """Fetching abstracts failed as a whole (for example, no network)."""


class DiskFull(PapersError):
    """A rebuild ran out of disk space (the previous index is left as it was)."""


class ConfigError(PapersError):
    """papers.toml cannot be read or says something that is not allowed."""


class ZoteroError(PapersError):
    """The Zotero data directory, or the papers.toml entry naming it, cannot be used."""


def disk_full_error(e: BaseException) -> bool:
    """True for the ways a full disk (or quota) shows up: OSError ENOSPC/EDQUOT, SQLite's
    SQLITE_FULL, and FAISS's write error (a RuntimeError quoting the failed write)."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(e).lower()
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in text
    if isinstance(e, RuntimeError):
        # FAISS quotes strerror: "write error in …: 4051 != 16000 (No space left on device)"
        return "no space left" in text or "quota exceeded" in text
    return False


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


class CatalogError(PapersError):
    """The catalog is missing, empty, not embedded, or a file given to it is unreadable."""
