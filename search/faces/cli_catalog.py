"""The `papers catalog` command group and `papers recommend`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from search.catalog.catalog import (
    Catalog,
    CatalogError,
    Embeddings,
    Filters,
    catalog_dir,
    catalog_encoder,
)
from search.catalog.embed import EmbedRequest, embed_catalog
from search.catalog.embed_stages import PRECISIONS
from search.catalog.recommend import DEFAULT_METHOD, markdown_digest, recommend
from search.catalog.sources import check_since
from search.errors import PapersError
from search.faces import output
from search.faces.cli_common import CONTEXT, PapersGroup, emit_json, err, json_option, out, paths_of
from search.faces.cli_common import progress_bar as embedding_progress
from search.readers.importers import write_atomic

MAX_PROBLEMS_SHOWN = 20


def _since(value: str | None) -> str | None:

    try:
        return check_since(value)
    except CatalogError as e:
        raise click.BadParameter(str(e)) from None


@click.group(cls=PapersGroup, invoke_without_command=True, context_settings=CONTEXT)
@json_option
@click.pass_context
def catalog_group(ctx: click.Context, as_json: bool) -> None:
    """Papers you have not noted (arXiv, OpenAlex, BEIR), to search and get recommendations from.

    The catalog lives in catalog/ beside notes/ and is never mixed with your notes: `list`,
    `show` and a plain `ask` stay about your notes. Without a subcommand, shows what is in it.

    \b
    Examples:
      papers catalog add arxiv-metadata-oai-snapshot.json --category cs.CV --since 2024-01-01
      papers catalog add openalex-works.jsonl beir/scifact/corpus.jsonl
      papers catalog embed
      papers catalog embed --ray ray://head-node:10001
      papers catalog
      papers ask "self-supervised denoising" --catalog
      papers recommend --since 2024-06-01 --markdown digest.md
    """
    if ctx.invoked_subcommand is not None:
        return

    paths = paths_of()
    with Catalog.open(catalog_dir(paths)) as cat:
        summary = cat.summary()
        embedded = []
        base = catalog_dir(paths) / "embeddings"
        for folder in sorted(base.glob("*")) if base.is_dir() else []:
            try:
                meta = Embeddings(folder).load().meta
            except PapersError:
                meta = {"count": 0, "version": None}
            embedded.append(
                {
                    "fingerprint": folder.name,
                    "vectors": meta.get("count", 0),
                    "current": meta.get("version") == summary["version"],
                    "ann": bool(meta.get("ann")),
                    "precision": meta.get("precision") or "fp32",
                }
            )
        summary["embeddings"] = embedded
    if as_json:
        emit_json(summary)
        return
    dates = (
        f", published {summary['first_date']} to {summary['last_date']}"
        if summary["first_date"]
        else ""
    )
    out(f"{summary['papers']} papers ({summary['with_abstract']} with an abstract){dates}")
    for source, n in summary["sources"].items():
        out(f"  source {source or '-'}: {n}")
    if summary["top_categories"]:
        cats = ", ".join(f"{c} {n}" for c, n in summary["top_categories"].items())
        out(f"  categories: {cats}")
    for f in summary["files"]:
        out(f"  file {f['file']}: {f['papers']} papers")
    for e in embedded:
        state = "current" if e["current"] else "stale: run `papers catalog embed`"
        kind = ", IVF-PQ index" if e["ann"] else ""
        out(
            f"  embeddings {e['fingerprint'][:12]} ({e['precision']}): "
            f"{e['vectors']} vectors{kind} ({state})"
        )
    if not embedded:
        out("  not embedded yet: run `papers catalog embed`")


@catalog_group.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CAT",
    help="Keep papers in this arXiv category (cs.CV; a prefix such as cs keeps cs.*). Repeatable.",
)
@click.option(
    "--since", default=None, metavar="DATE", help="Keep papers published on or after DATE."
)
@json_option
def add_command(
    files: tuple[Path, ...], categories: tuple[str, ...], since: str | None, as_json: bool
) -> None:
    """Add papers from FILES (JSON lines) to the catalog, streamed with bounded memory.

    Reads the arXiv metadata snapshot, OpenAlex works (abstract_inverted_index is turned back
    into text), BEIR corpora ({"_id", "title", "text"}) and any JSON lines with "title" and
    "abstract". A paper already there (same arXiv id, DOI or title) is updated in place;
    `papers catalog embed` then embeds only new or changed text.

    \b
    Examples:
      papers catalog add arxiv-metadata-oai-snapshot.json --category cs.CV --category cs.LG
      papers catalog add arxiv-metadata-oai-snapshot.json --since 2024-01-01
      papers catalog add works.jsonl corpus.jsonl --json
    """

    for path in files:
        if not path.is_file():
            raise click.BadParameter(f"{path} is not a readable file", param_hint="FILES")
    filters = Filters(tuple(c.strip() for c in categories if c.strip()), _since(since))
    with Catalog.open(catalog_dir(paths_of()), create=True) as cat:
        report = cat.add_files(list(files), filters, log=err)
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        err(f"warning: {problem}")
    if as_json:
        emit_json(report.to_json())
        return
    for f in report.files:
        out(f"{f['file']}: {f['added']} added, {f['updated']} updated, {f['unchanged']} unchanged")
    out(f"catalog: {report.total} papers")
    if report.added or report.updated:
        err("run `papers catalog embed` to embed the new papers")


@catalog_group.command("embed")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Embed on a Ray cluster (e.g. ray://head:10001, or 'auto'; 'local' starts one here).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Ray encoder actors (default: the cluster's CPUs, or its GPUs).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Embed at most N papers.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="What the model runs in: fp32 or int8 on CPUs, fp16, bf16 or fp32 on GPUs (default: "
    "the precision the catalog was embedded in, else fp32 on CPUs and fp16 on GPUs).",
)
@click.option(
    "--int8",
    "int8",
    is_flag=True,
    help="Same as --precision int8: the ONNX export quantised, 1.5x fp32's papers per CPU "
    "second, nDCG@10 0.002 lower on SciFact.",
)
@click.option(
    "--re-embed",
    is_flag=True,
    help="Delete the catalog's vectors and embed every paper again (to change precision).",
)
@click.option(
    "--model",
    envvar="PAPERS_MODEL",
    default=None,
    metavar="NAME_OR_PATH",
    help="Model (default: the one the notes index was built with).",
)
@json_option
def embed_command(
    ray_address: str | None,
    workers: int | None,
    limit: int | None,
    precision: str | None,
    int8: bool,
    re_embed: bool,
    model: str | None,
    as_json: bool,
) -> None:
    """Embed catalog papers that have no vector yet, then merge the vectors for search.

    Vectors are written in shards as they are done: stop at any time and run again to go on
    from the finished shards. Text is tokenized ahead of the model; locally the ONNX export
    uses every core (fp32, or int8 with --int8), and a long run first prints how long it will
    take, measured on its own papers. With --ray the same stages run as Ray Data tasks over a
    cluster: tokenizing on its CPUs, the model on its GPUs (torch, fp16) or, without GPUs, one
    ONNX actor per CPU. A catalog's vectors come from one precision: another one is refused
    unless --re-embed.

    \b
    Examples:
      papers catalog embed
      papers catalog embed --int8
      papers catalog embed --precision fp32 --re-embed
      papers catalog embed --ray auto --workers 16
      papers catalog embed --ray local --workers 2
    """
    if int8 and precision not in (None, "int8"):
        raise click.BadParameter(
            f"--int8 and --precision {precision} disagree", param_hint="--int8"
        )
    request = EmbedRequest(
        precision="int8" if int8 else precision,
        re_embed=re_embed,
        limit=limit,
        ray_address=ray_address,
        workers=workers,
    )
    paths = paths_of()
    # `with`: a database found damaged while in use is one line naming it (Catalog.__exit__)
    with Catalog.open(catalog_dir(paths)) as cat:
        enc = catalog_encoder(paths, model, log=err)
        with embedding_progress() as progress:
            report = embed_catalog(paths, cat, enc, request, log=err, progress=progress)
    if as_json:
        emit_json(report.to_json())
        return
    out(
        f"embedded {report.embedded} papers in {report.seconds:.1f} s ({report.workers}, "
        f"{report.precision}); {report.papers - report.missing} of {report.papers} catalog "
        "papers have vectors"
    )


@click.command(context_settings=CONTEXT)
@click.option(
    "--like",
    multiple=True,
    metavar="SECTION|TAG|TITLE",
    help="Positives: your papers under this heading, with this tag, or this title. Repeatable.",
)
@click.option("--unlike", multiple=True, metavar="SECTION|TAG|TITLE", help="Negatives. Repeatable.")
@click.option("--since", default=None, metavar="DATE", help="Only papers published on/after DATE.")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option(
    "--method",
    type=click.Choice(["centroid", "maxsim", "svm", "svm-kw"]),
    default=None,
    help="How to rank (default: svm-kw when the catalog has keyword features, else svm: "
    "the best measured, see docs/benchmarks.md).",
)
@click.option(
    "--markdown",
    "markdown_out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Also write a markdown digest to this file ('-' prints it).",
)
@json_option
def recommend_command(
    like: tuple[str, ...],
    unlike: tuple[str, ...],
    since: str | None,
    k: int,
    method: str | None,
    markdown_out: Path | None,
    as_json: bool,
) -> None:
    """Recommend catalog papers like the ones in your notes.

    Positives are all your noted papers, or those picked with --like; --unlike picks
    negatives. Each result says which of your papers it is closest to, and its relevance, 0
    to 1: the cosine similarity to that paper (--json keeps the method's raw score). Papers
    already in your notes are never recommended. With --since it is a daily digest of new
    papers.

    \b
    Examples:
      papers recommend
      papers recommend --like "Metric learning" --unlike "Denoising" -k 10
      papers recommend --since 2024-06-01 --markdown digest.md
      papers recommend --since 2024-06-02 --json | jq '.[].title'
    """

    result = recommend(
        paths_of(),
        like=list(like),
        unlike=list(unlike),
        since=_since(since),
        k=k,
        method=method or DEFAULT_METHOD,
    )
    if markdown_out is not None:
        text = markdown_digest(result)
        if str(markdown_out) == "-":
            out(text)
        else:
            write_atomic(markdown_out, text.encode("utf-8"))
            err(f"digest written to {markdown_out}")
    if as_json:
        emit_json(result.to_json())
        return
    if markdown_out is not None and str(markdown_out) == "-":
        return
    if not result.recommendations:
        err("no catalog papers to recommend" + (f" since {result.since}" if result.since else ""))
        return
    err(
        f"{len(result.recommendations)} of {result.candidates} catalog papers, by {result.method}, "
        f"from {result.positives} of your papers"
    )
    out(output.recommendations_table(result.recommendations))


# -- `ask --catalog` and `similar --catalog` (called from cli.py) ----------------------------------


def print_catalog_hits(hits: list[Any], as_json: bool) -> None:
    if as_json:
        emit_json([h.to_json() for h in hits])
        return
    if not hits:
        err("no catalog papers found")
        return
    out(output.catalog_hits_table(hits))
