"""papers: semantic search over a researcher's paper notes.

The public API (see `search.api`):

    from search import Library
    lib = Library("~/papers")
    hits = lib.ask("denoising with one noisy image", k=5)
"""

from . import api
from .api import *  # noqa: F403 - the API is the package's front door: search.Library etc.
from .version import __version__

__all__ = [*api.__all__, "__version__"]
