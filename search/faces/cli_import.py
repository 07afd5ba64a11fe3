"""The `papers import` and `papers fetch-abstracts` commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from search.errors import PapersError
from search.faces import output
from search.faces.cli_common import CONTEXT, emit_json, err, library_of, shown_path

MAX_PROBLEMS_SHOWN = 20


@click.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--zotero",
    "zotero_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Read this Zotero data directory (holding zotero.sqlite) on every rebuild; "
    "it is recorded in papers.toml.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for scripts.")
def import_command(files: tuple[Path, ...], zotero_dir: Path | None, as_json: bool) -> None:
    """Copy paper lists (BibTeX, JSON lines) into notes/imported/ as readable files.

    Each FILE becomes notes/imported/<name>.jsonl, one paper a line (title, abstract,
    authors, year, venue, arxiv, doi, url, id, note, tags, source). Importing a file again
    updates the same output and keeps what you edited in it by hand (your fields win; new
    papers are added); another file with the same name gets <name>-2.jsonl. Papers
    already in your notes gain the imported abstract (joined by title, arXiv id or DOI).
    Run `papers rebuild` afterwards to index them.

    With --zotero DIR, nothing is copied: DIR is recorded in papers.toml and every rebuild
    reads the Zotero library (items, notes, PDF annotations, full text) directly, read-only.

    \b
    Formats:
      .bib     BibTeX (Zotero, Google Scholar, ...)
      .jsonl   JSON lines: {"title", "abstract", ...}, the arXiv metadata
               snapshot, or a BEIR corpus.jsonl ({"_id", "title", "text"})

    \b
    Examples:
      papers import ~/Zotero/library.bib
      papers import cvpr2021/papers.jsonl arxiv-metadata.jsonl --json
      papers import --zotero ~/Zotero
    """
    lib = library_of()
    if zotero_dir is not None:
        try:
            data_dir, config = lib.add_zotero(zotero_dir)
        except PapersError as e:
            raise click.ClickException(str(e)) from None
        if as_json and not files:
            emit_json(output.zotero_json(data_dir, config))
        else:
            click.echo(f"Zotero library {data_dir} → {shown_path(config, lib.root)} [zotero]")
        err("run `papers rebuild` to index it")
        if not files:
            return
    elif not files:
        raise click.UsageError("name FILES to import, or --zotero DIR")
    try:
        report = lib.import_files(files)
    except PapersError as e:
        raise click.ClickException(str(e)) from None
    for item in report.files:
        for problem in item.problems[:MAX_PROBLEMS_SHOWN]:
            err(f"warning: {problem}")
        if len(item.problems) > MAX_PROBLEMS_SHOWN:
            err(f"warning: ... and {len(item.problems) - MAX_PROBLEMS_SHOWN} more in {item.name}")
    if as_json:
        emit_json(output.import_json(report))
        return
    for item in report.files:
        if item.written is None:
            click.echo(f"{item.name}: {item.message}")
            continue
        dups = item.read - item.written_records
        extra = f", {dups} duplicates joined" if dups else ""
        bad = f", {len(item.problems)} skipped (see warnings)" if item.problems else ""
        merged = ""
        if item.edits_kept or item.removed:
            merged = (
                f"; merged: {item.edits_kept} papers keep your edits, {item.added} new, "
                f"{item.removed} gone from the source removed"
            )
        click.echo(
            f"{item.name}: {item.written_records} papers → "
            f"{shown_path(item.written, lib.root)}{extra}{bad}{merged}"
        )
    if any(item.written is not None for item in report.files):
        err("run `papers rebuild` to index the imported papers")


@click.command(context_settings=CONTEXT)
@click.option(
    "--source",
    type=click.Choice(["arxiv", "openalex", "semanticscholar"]),
    default="arxiv",
    show_default=True,
    help="Where to look abstracts up.",
)
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Look up at most N papers.")
@click.option("--base-url", default=None, metavar="URL", help="Use another API address.")
@click.option(
    "--contact",
    default=None,
    metavar="EMAIL",
    envvar="PAPERS_CONTACT",
    help="Your e-mail, sent in the User-Agent (and to OpenAlex). Env: PAPERS_CONTACT.",
)
@click.option(
    "--delay",
    type=click.FloatRange(min=0),
    default=None,
    metavar="S",
    help="Seconds between requests (default: what the service asks: arXiv 3, "
    "OpenAlex 0.1, Semantic Scholar 1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for scripts.")
def fetch_command(
    source: str,
    limit: int | None,
    base_url: str | None,
    contact: str | None,
    delay: float | None,
    as_json: bool,
) -> None:
    """Fetch abstracts of papers in your notes that have none.

    Looks each paper up by its arXiv id or DOI, else by title (accepted only when the found
    title is near-identical), and appends what it finds to notes/abstracts.jsonl as soon as
    it has it: stop at any time (Ctrl-C) and run again to continue. Papers a source could not
    find are recorded too and not asked again from that source.

    \b
    Examples:
      papers fetch-abstracts --limit 20
      papers fetch-abstracts --source openalex --contact me@example.org
      papers fetch-abstracts --source semanticscholar --json
    """
    lib = library_of()
    out_path = lib.abstracts_file

    bar_state: dict[str, Any] = {}

    def progress(done: int, total: int, title: str, status: str) -> None:
        bar = bar_state.get("bar")
        if bar is None:
            bar = click.progressbar(
                length=total,
                label=f"fetching abstracts from {source}",
                file=sys.stderr,
                show_pos=True,
            )
            bar.__enter__()
            bar_state["bar"] = bar
        bar.update(1)
        if status != "found":
            bar_state.setdefault("misses", []).append(f"{status.replace('_', ' ')}: {title}")

    try:
        report = lib.fetch_abstracts(
            source=source,
            limit=limit,
            base_url=base_url,
            contact=contact,
            delay=delay,
            progress=progress,
        )
    except KeyboardInterrupt:
        _close_bar(bar_state)
        raise click.ClickException(
            f"interrupted; abstracts fetched so far are kept in {shown_path(out_path, lib.root)}"
        ) from None
    except PapersError as e:
        _close_bar(bar_state)
        raise click.ClickException(str(e)) from None
    _close_bar(bar_state)
    for line in bar_state.get("misses", [])[:MAX_PROBLEMS_SHOWN]:
        err(line)
    if as_json:
        emit_json(output.fetch_json(report))
        return
    where = shown_path(out_path, lib.root)
    if report.without_abstract == 0:
        click.echo("every paper already has an abstract")
        return
    click.echo(
        f"{report.found} abstracts fetched from {source} → {where}; "
        f"{report.not_found} not found, {report.errors} errors, "
        f"{report.already_done} already tried, "
        f"{report.without_abstract - report.already_done - report.looked_up} left for later"
    )
    if report.found:
        err("run `papers rebuild` to index the new abstracts")


def _close_bar(state: dict[str, Any]) -> None:
    bar = state.pop("bar", None)
    if bar is not None:
        bar.__exit__(None, None, None)
