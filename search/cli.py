"""The `papers` command line: resolves paths, calls the library, formats what comes back."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_catalog import register_catalog
from .errors import PapersError
from .library import LIBRARY_ENV, Paths, library_paths

# Errors a user can cause end as one line on stderr (click prints "Error: …", exit 1).


class PapersGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PapersError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None


def err(message: str) -> None:
    click.echo(message, err=True)


def paths_of(ctx: click.Context) -> Paths:
    return ctx.find_root().obj["paths"]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
    type=click.Choice(["hybrid", "semantic", "keyword"]),
    default="hybrid",
    show_default=True,
    help="Rank by meaning, by keywords, or both fused.",
)
model_option = click.option(
    "--model",
    envvar="PAPERS_MODEL",
    default=None,
    metavar="NAME_OR_PATH",
    help="sentence-transformers model (default: the packaged all-MiniLM-L6-v2). Env: PAPERS_MODEL.",
)


@click.group(cls=PapersGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--library",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=LIBRARY_ENV,
    default=None,
    help="Folder holding notes/ and index/ (env PAPERS_LIBRARY; default: .).",
)
@click.version_option(__version__, prog_name="papers")
@click.pass_context
def cli(ctx: click.Context, library: Path | None) -> None:
    """Semantic search over your paper notes.

    Notes live in notes/ (markdown lists, reading-list READMEs, one file per paper, BibTeX,
    JSON lines); `papers rebuild` indexes them into index/, which you can delete at any time.

    \b
    Examples:
      papers rebuild
      papers ask "how can I train a denoiser when I only have one noisy image?"
      papers ask "metric learning losses" --section Embedding -k 5 --json
      papers similar "Proxy Anchor Loss"
      papers similar --text "We propose a loss for deep metric learning..."
      papers list
    """
    ctx.obj = {"paths": library_paths(library)}


# -- rebuild ---------------------------------------------------------------------------------


@cli.command()
@model_option
@click.option("--full", is_flag=True, help="Re-embed everything, not just what changed.")
@click.option("--wait", is_flag=True, help="Wait for a rebuild already running, then run.")
@json_option
@click.pass_context
def rebuild(ctx: click.Context, model: str | None, full: bool, wait: bool, as_json: bool) -> None:
    """Index notes/ into index/, embedding only what changed.

    The new index is built beside the old one and swapped in at the end: a rebuild that fails
    or is killed leaves the previous index whole.

    \b
    Examples:
      papers rebuild
      papers rebuild --full
      papers rebuild --model /path/to/a/sentence-transformers/model
    """
    from .build import rebuild as do_rebuild

    paths = paths_of(ctx)
    with _progress_bar() as progress:
        report = do_rebuild(paths, model=model, full=full, wait=wait, log=err, progress=progress)
    if as_json:
        emit_json(report.to_json())
    if report.nothing_changed:
        err(
            f"index is up to date: {report.files} files, {report.papers} papers, "
            f"{report.chunks} chunks ({report.seconds:.2f} s)"
        )
        return
    err(
        f"indexed {report.files} files ({report.files_parsed} parsed), {report.papers} papers, "
        f"{report.chunks} chunks in {report.seconds:.1f} s"
    )
    err(
        f"papers: {report.papers_added} added, {report.papers_changed} changed, "
        f"{report.papers_removed} removed, {report.papers_unchanged} unchanged; "
        f"chunks: {report.chunks_added} added, {report.chunks_changed} changed, "
        f"{report.chunks_removed} removed, {report.chunks_unchanged} unchanged "
        f"({report.chunks_embedded} embedded)"
    )
    if report.problems:
        err(f"{len(report.problems)} problem(s) in the notes were skipped (listed above)")


class _progress_bar:
    """A progress bar on stderr while embedding (only when there is much to embed)."""

    def __enter__(self) -> Callable[[int], Callable[[int], None]]:
        self._progress: Any = None
        return self.start

    def start(self, total: int) -> Callable[[int], None]:
        if total < 64:
            return lambda n: None
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


# -- ask / similar ------------------------------------------------------------------------------


def _searcher(ctx: click.Context, model: str | None = None) -> Any:
    from .query import Searcher

    return Searcher(paths_of(ctx).index, model=model, warn=err)


@cli.command()
@click.argument("question", nargs=-1, required=True)
@k_option
@click.option("--section", "-s", default=None, help="Only papers under a heading containing S.")
@mode_option
@click.option("--explain", is_flag=True, help="Show how each retriever ranked each result.")
@model_option
@click.option("--catalog", "in_catalog", is_flag=True, help="Search the catalog, not your notes.")
@json_option
@click.pass_context
def ask(
    ctx: click.Context,
    question: tuple[str, ...],
    k: int,
    section: str | None,
    mode: str,
    explain: bool,
    model: str | None,
    in_catalog: bool,
    as_json: bool,
) -> None:
    """Find the papers that answer QUESTION (in your notes, or --catalog).

    \b
    Examples:
      papers ask "how can I train a denoiser when I only have one noisy image?"
      papers ask "losses for metric learning" --section Embedding -k 5
      papers ask "RLHF" --mode keyword --json | jq '.[].title'
      papers ask "diffusion models for video" --catalog
    """
    searcher = _searcher(ctx, model)
    if in_catalog:
        from .cli_catalog import ask_catalog, print_catalog_hits

        return print_catalog_hits(ask_catalog(searcher, " ".join(question), k), as_json)
    hits = searcher.ask(" ".join(question), k=k, section=section, mode=mode)
    _print_hits(hits, as_json, explain)


@cli.command()
@click.argument("query", nargs=-1)
@click.option("--text", default=None, help="Find papers similar to this text (e.g. an abstract).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Find papers similar to this note file ('-' reads stdin).",
)
@k_option
@mode_option
@click.option("--explain", is_flag=True, help="Show how each retriever ranked each result.")
@click.option("--catalog", "in_catalog", is_flag=True, help="Find them in the catalog instead.")
@json_option
@click.pass_context
def similar(
    ctx: click.Context,
    query: tuple[str, ...],
    text: str | None,
    file_: Path | None,
    k: int,
    mode: str,
    explain: bool,
    in_catalog: bool,
    as_json: bool,
) -> None:
    """Find papers similar to a paper (by title or id), to --text, or to a --file.

    A paper is never in its own results. A title is matched loosely; an unknown or ambiguous
    one lists the closest titles.

    \b
    Examples:
      papers similar "Proxy Anchor Loss"
      papers similar 1707.01495
      papers similar --text "We propose a self-supervised denoising method..."
      papers similar --file notes/my-paper.md
      papers similar "Proxy Anchor Loss" --catalog
    """
    given = sum(bool(x) for x in (query, text, file_))
    if given != 1:
        raise click.UsageError("give exactly one of: a TITLE or id, --text, --file")
    searcher = _searcher(ctx)
    if in_catalog:
        from .cli_catalog import print_catalog_hits, similar_catalog

        paper = searcher.find(" ".join(query)) if query else None
        body = text if text is not None else _file_text(file_) if file_ else None
        return print_catalog_hits(similar_catalog(searcher, paper, body, k), as_json)
    if query:
        paper = searcher.find(" ".join(query))
        err(f"papers similar to: {paper.title}")
        hits = searcher.similar_to_paper(paper, k=k, mode=mode)
    elif text is not None:
        hits = searcher.similar_to_text(text, k=k, mode=mode)
    else:
        assert file_ is not None
        hits = searcher.similar_to_text(_file_text(file_), k=k, mode=mode)
    _print_hits(hits, as_json, explain)


def _file_text(path: Path) -> str:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        raise PapersError(f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PapersError(f"{path} is not UTF-8 text") from None


def _print_hits(hits: list[Any], as_json: bool, explain: bool) -> None:
    if as_json:
        emit_json([h.to_json() for h in hits])
        return
    if not hits:
        err("no papers found")
        return
    from .output import hits_table

    click.echo(hits_table(hits, explain=explain))


# -- list / show / where ---------------------------------------------------------------------


@cli.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List what is indexed, per file and per paper.

    \b
    Examples:
      papers list
      papers list --json | jq length
    """
    from .store import Index

    index = Index.open(paths_of(ctx).index)
    papers = index.all_papers()
    if as_json:
        emit_json(
            [
                {
                    "id": p.id,
                    "title": p.title,
                    "section": p.section,
                    "sources": [{"file": f"notes/{f}", "line": line} for f, line in p.sources],
                }
                for p in papers
            ]
        )
        return
    from .output import papers_by_file

    click.echo(papers_by_file(papers, index.manifest))


@cli.command()
@click.argument("title_or_id", nargs=-1, required=True)
@json_option
@click.pass_context
def show(ctx: click.Context, title_or_id: tuple[str, ...], as_json: bool) -> None:
    """Show one paper: its notes, abstract, ids and where it stands in the notes.

    \b
    Examples:
      papers show "Circle Loss"
      papers show arxiv:1707.01495
    """
    from .query import Searcher

    paper = Searcher(paths_of(ctx).index).find(" ".join(title_or_id))
    if as_json:
        from .query import Hit

        emit_json(Hit(rank=1, score=1.0, paper=paper).to_json())
        return
    from .output import paper_details

    click.echo(paper_details(paper))


@cli.command()
@json_option
@click.pass_context
def where(ctx: click.Context, as_json: bool) -> None:
    """Print where the library, its notes and its index are."""
    paths = paths_of(ctx)
    data = {"library": str(paths.root), "notes": str(paths.notes), "index": str(paths.index)}
    if as_json:
        emit_json(data)
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")


def _add_optional_commands() -> None:
    """Commands that live in their own modules."""
    try:
        from .cli_import import fetch_command, import_command
    except ImportError:  # pragma: no cover - during development
        return
    cli.add_command(import_command, "import")
    cli.add_command(fetch_command, "fetch-abstracts")
    try:
        from .cli_eval import eval_command
    except ImportError:  # pragma: no cover - during development
        return
    cli.add_command(eval_command, "eval")


_add_optional_commands()
register_catalog(cli)


def main() -> None:
    cli(prog_name="papers")


if __name__ == "__main__":  # pragma: no cover
    main()
