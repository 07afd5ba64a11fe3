"""papers: semantic search over a researcher's paper notes.

The public API (see `search.api`):

    from search import Library
    lib = Library("~/papers")
    hits = lib.ask("denoising with one noisy image", k=5)

The API's names are loaded on first use (PEP 562), not when the package is imported: every
`papers` command imports this package first, and most need only a few of its modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.version import __version__ as __version__

if TYPE_CHECKING:
    from search.api import *  # noqa: F403

_PACKAGE = Path(__file__).parent


def __getattr__(name: str) -> Any:
    # A submodule's name reaches here while `from . import x` imports it: not an API name.
    if name != "__all__" and (
        name.startswith("__") or (_PACKAGE / f"{name}.py").exists() or (_PACKAGE / name).is_dir()
    ):
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    from search import api  # deferred: start-up of commands that do not need the whole API

    if name == "__all__":
        return [*api.__all__, "__version__"]
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")
