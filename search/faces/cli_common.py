"""What every `papers` command shares: error wrapping, common options, output and progress.

Commands live in cli.py (search and index), cli_import.py (notes in), cli_eval.py and
cli_catalog.py (the catalog and `recommend`); each resolves its input, calls one
`search.api.Library` method (or, for the catalog, one catalog/recommend function) and formats
what comes back with `search.faces.output`.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from search.api import MODES, Library
from search.encoders.encoder import DEFAULT_MODEL
from search.errors import PapersError
from search.faces.output import dumps, terminal_safe
from search.library import Paths

CONTEXT = {"help_option_names": ["-h", "--help"]}


class PapersGroup(click.Group):
    """Errors a user can cause end as one line on stderr (click prints "Error: …", exit 1).

    `lazy_commands` maps a command name to "module:attribute": the module is imported only
    when that command runs (or `--help` lists it), so `papers ask` does not pay for loading
    the servers, the catalog or the importers (click's documented lazy-loading pattern)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PapersError as e:
            raise click.ClickException(terminal_safe(str(e))) from None
        except OSError as e:
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise click.ClickException(terminal_safe(f"{e.strerror or e}{where}")) from None


def out(text: str) -> None:
    """Print text for people on stdout: notes can hold terminal escapes, which are dropped."""
    click.echo(terminal_safe(text))


def err(message: str) -> None:
    """A line on stderr (progress, warnings, hints; stdout is for data), without terminal
    escapes: it may quote notes or file names."""
    click.echo(terminal_safe(message), err=True)


def paths_of(ctx: click.Context | None = None) -> Paths:
    """The library folders chosen by the root group's --library."""
    ctx = ctx or click.get_current_context()
    paths: Paths = ctx.find_root().obj["paths"]
    return paths


def library_of(ctx: click.Context | None = None, model: str | None = None) -> Library:
    """The `Library` a command works on, logging to stderr."""
    return Library(paths_of(ctx).root, model=model, log=err)


def emit_json(data: Any) -> None:
    click.echo(dumps(data))


def shown_path(path: Path | None, root: Path) -> str:
    """A path as the user should see it: relative to the library folder when inside it."""
    if path is None:
        return "-"
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
k_option = click.option(
    "-k",
    "k",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many papers to return.",
)
mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="Rank by meaning, by keywords, or both fused.",
)
model_option = click.option(
    "--model",
    envvar="PAPERS_MODEL",
    default=None,
    metavar="NAME_OR_PATH",
    help=f"sentence-transformers model (default: the packaged {DEFAULT_MODEL}). Env: PAPERS_MODEL.",
)


# Without a terminal, progress lines start only once embedding has taken this long: a quick
# rebuild (and a script reading its one error line) sees none.
PROGRESS_QUIET_SECONDS = 5.0


def _progress_lines(total: int) -> Callable[[int], None]:
    """Without a terminal (a log file, CI), a line per tenth done or per 30 s, and the last;
    none until PROGRESS_QUIET_SECONDS have passed."""
    done = 0
    start = time.monotonic()
    shown_at = (0, start)

    def advance(n: int) -> None:
        nonlocal done, shown_at
        done += n
        tenths, now = done * 10 // total, time.monotonic()
        if now - start < PROGRESS_QUIET_SECONDS:
            return
        if done >= total or tenths > shown_at[0] * 10 // total or now - shown_at[1] >= 30:
            click.echo(f"embedding: {done}/{total} chunks ({done * 100 // total}%)", err=True)
            shown_at = (done, now)

    return advance


class progress_bar:
    """A progress bar on stderr while embedding (only when there is much to embed).

    `with progress_bar() as progress:` gives the `progress(total)` callback a rebuild takes.
    """

    def __enter__(self) -> Callable[[int], Callable[[int], None]]:
        self._progress: Any = None
        return self.start

    def start(self, total: int) -> Callable[[int], None]:
        if total < 64:
            return lambda n: None
        if not sys.stderr.isatty():
            return _progress_lines(total)
        # lazy: rich's progress machinery costs ~25 ms to import, and most runs embed little
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "embedding",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task("embed", total=total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
