"""The `papers` command line: resolves paths, calls the library, formats what comes back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from search.api import Hit, Library, NotFound, Paper
from search.errors import PapersError
from search.faces import output
from search.faces.cli_common import (
    CONTEXT,
    PapersGroup,
    emit_json,
    err,
    json_option,
    k_option,
    library_of,
    mode_option,
    model_option,
    out,
    paths_of,
    progress_bar,
)
from search.library import LIBRARY_ENV, library_paths
from search.version import __version__

# Commands whose modules load what a question does not need (the servers, the catalog, the
# importers, evaluation): imported only when run or listed by --help.
LAZY_COMMANDS = {
    "import": "search.faces.cli_import:import_command",
    "fetch-abstracts": "search.faces.cli_import:fetch_command",
    "eval": "search.faces.cli_eval:eval_command",
    "catalog": "search.faces.cli_catalog:catalog_group",
    "recommend": "search.faces.cli_catalog:recommend_command",
    "map": "search.faces.cli_serve:map_command",
    "mcp": "search.faces.cli_serve:mcp_command",
    "serve": "search.faces.cli_serve:serve_command",
    "watch": "search.faces.cli_serve:watch_command",
}


@click.group(cls=PapersGroup, context_settings=CONTEXT, lazy_commands=LAZY_COMMANDS)
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
@click.option(
    "--verify",
    is_flag=True,
    help="Re-hash every note file and re-read those whose content changed, even when their "
    "size and modification time did not.",
)
@click.option(
    "--follow-links",
    is_flag=True,
    envvar="PAPERS_FOLLOW_LINKS",
    help="Follow symlinks in notes/ that lead outside the library (not followed by default). "
    "Env: PAPERS_FOLLOW_LINKS=1.",
)
@json_option
@click.pass_context
def rebuild(
    ctx: click.Context,
    model: str | None,
    full: bool,
    wait: bool,
    verify: bool,
    follow_links: bool,
    as_json: bool,
) -> None:
    """Index notes/ into index/, embedding only what changed.

    The new index is built beside the old one and swapped in at the end: a rebuild that fails
    or is killed leaves the previous index whole.

    \b
    Examples:
      papers rebuild
      papers rebuild --full
      papers rebuild --verify
      papers rebuild --follow-links
      papers rebuild --model /path/to/a/sentence-transformers/model
    """
    with progress_bar() as progress:
        report = library_of(ctx, model).rebuild(
            full=full, wait=wait, verify=verify, follow_links=follow_links, progress=progress
        )
    if as_json:
        emit_json(output.rebuild_json(report))
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


# -- ask / similar ------------------------------------------------------------------------------


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

    Each result shows its relevance, 0 to 1: how close in meaning the paper's closest
    passage is to the question (cosine similarity; about 0.3 is loosely related, above 0.5
    close). With --mode keyword it is the share of the question's words the paper holds.
    Ranks also weigh keywords, so relevance need not fall with rank; --explain and --json
    keep the raw fused score.

    \b
    Examples:
      papers ask "how can I train a denoiser when I only have one noisy image?"
      papers ask "losses for metric learning" --section Embedding -k 5
      papers ask "RLHF" --mode keyword --json | jq '.[].title'
      papers ask "diffusion models for video" --catalog
    """
    lib = library_of(ctx, model)
    if in_catalog:
        from search.faces.cli_catalog import print_catalog_hits  # deferred: see LAZY_COMMANDS

        return print_catalog_hits(lib.ask_catalog(" ".join(question), k=k), as_json)
    hits = lib.ask(" ".join(question), k=k, section=section, mode=mode)
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
    """Find papers similar to a paper (by title or id), to several papers together, to --text,
    or to a --file.

    Several quoted titles or ids give papers like all of them together (the mean of their
    vectors); words that together name one paper need no quotes. A paper is never in its own
    results. A title is matched loosely; an unknown or ambiguous
    one lists the closest titles. Relevance, 0 to 1, is the cosine similarity of each
    result's closest passage to the paper (or text), as in `papers ask`.

    \b
    Examples:
      papers similar "Proxy Anchor Loss"
      papers similar "Proxy Anchor Loss" "Circle Loss"   # more like these two
      papers similar 1707.01495
      papers similar --text "We propose a self-supervised denoising method..."
      papers similar --file notes/my-paper.md
      papers similar "Proxy Anchor Loss" --catalog
    """
    given = sum(bool(x) for x in (query, text, file_))
    if given != 1:
        raise click.UsageError("give exactly one of: a TITLE or id, --text, --file")
    lib = library_of(ctx)
    if in_catalog:
        body = text if text is not None else _file_text(file_) if file_ else None
        found = lib.similar_catalog(" ".join(query) if query else None, text=body, k=k)
        from search.faces.cli_catalog import print_catalog_hits  # deferred: see LAZY_COMMANDS

        return print_catalog_hits(found, as_json)
    if query:
        papers = _papers_named(lib, query)
        err("papers similar to: " + "; ".join(p.title for p in papers))
        hits = lib.similar(papers, k=k, mode=mode)
    else:
        given_text = text if text is not None else _file_text(file_) if file_ else ""
        hits = lib.similar(text=given_text, k=k, mode=mode)
    _print_hits(hits, as_json, explain)


def _papers_named(lib: Library, words: tuple[str, ...]) -> list[Paper]:
    """The paper the words name together (`papers similar Proxy Anchor Loss`), or, when they
    name none and there are several, the paper each one names (`papers similar "A" "B"`)."""
    try:
        return [lib.show(" ".join(words))]
    except NotFound as e:
        if len(words) < 2:
            raise
        whole = e
    try:
        return [lib.show(w) for w in words]
    except NotFound:
        raise whole from None  # neither reading names papers: say so of the whole


def _file_text(path: Path) -> str:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        raise PapersError(f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PapersError(f"{path} is not UTF-8 text") from None


def _print_hits(hits: list[Hit], as_json: bool, explain: bool) -> None:
    if as_json:
        emit_json(output.hits_json(hits))
        return
    if not hits:
        err("no papers found")
        return
    out(output.hits_table(hits, explain=explain))


# -- list / show / where ---------------------------------------------------------------------


@cli.command(name="list")
@click.option(
    "--files", "by_file", is_flag=True, help="How each note file was read, and why (one line each)."
)
@click.option(
    "--doubtful",
    is_flag=True,
    help="With --files: only the files whose reading rests on weak evidence (marked unsure).",
)
@json_option
@click.pass_context
def list_(ctx: click.Context, by_file: bool, doubtful: bool, as_json: bool) -> None:
    """List what is indexed, per file and per paper.

    With --files, one line per note file: how it was read (a list of N papers, one paper,
    skipped, data) and why; a reading on weak evidence says `unsure:` and what makes it so
    (--doubtful lists only those). A file read wrong can be fixed in papers.toml (see the
    README).

    \b
    Examples:
      papers list
      papers list --json | jq length
      papers list --files
      papers list --files --doubtful
      papers list --files --json | jq '.[] | select(.reading == "skipped")'
    """
    lib = library_of(ctx)
    if doubtful and not by_file:
        raise click.BadParameter("--doubtful goes with --files", param_hint="--doubtful")
    if by_file:
        readings = lib.file_readings()
        if doubtful:
            readings = [r for r in readings if r.unsure]
            if not readings and not as_json:
                err("no file's reading is unsure")
                return
        if as_json:
            emit_json(output.file_readings_json(readings))
        else:
            out(output.file_readings_table(readings))
        return
    papers = lib.papers()
    if as_json:
        emit_json(output.paper_list_json(papers))
        return
    out(output.papers_by_file(papers, lib.info()))


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
    paper = library_of(ctx).show(" ".join(title_or_id))
    if as_json:
        emit_json(output.paper_json(paper))
        return
    out(output.paper_details(paper))


@cli.command()
@json_option
@click.pass_context
def where(ctx: click.Context, as_json: bool) -> None:
    """Print where the library, its notes and its index are."""
    data = output.paths_json(paths_of(ctx))
    if as_json:
        emit_json(data)
    else:
        for k, v in data.items():
            out(f"{k}: {v}")


def main() -> None:
    cli(prog_name="papers")


if __name__ == "__main__":  # pragma: no cover
    main()
