"""Exceptions the library raises; the CLI turns each into one line on stderr."""


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


class ZoteroError(PapersError):
    """The Zotero data directory, or the papers.toml entry naming it, cannot be used."""
