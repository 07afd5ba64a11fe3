"""`papers eval`: answer quality of each retrieval mode on a BEIR-format folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from search.errors import PapersError
from search.evaluate import evaluate_folder
from search.faces import output
from search.faces.cli_common import CONTEXT, emit_json, err, model_option, progress_bar

MODE_ORDER = ("keyword", "semantic", "hybrid")


@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--mode",
    "modes",
    type=click.Choice(MODE_ORDER),
    multiple=True,
    help="Only this mode (repeatable; default: all three).",
)
@click.option(
    "--split", default=None, help="Which qrels/SPLIT.tsv (default: the only one, or test)."
)
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def _eval(
    folder: Path, modes: tuple[str, ...], split: str | None, model: str | None, as_json: bool
) -> None:
    """Measure answer quality on a BEIR-format FOLDER.

    FOLDER holds corpus.jsonl (_id, title, text), queries.jsonl (_id, text) and
    qrels/SPLIT.tsv (query-id, corpus-id, score). The corpus is indexed into a throw-away
    library (your own library is not touched), every judged query is asked as `papers ask`
    would ask it, and nDCG@10, Recall@100, MRR@10 and queries per second are printed for each
    mode.

    \b
    Examples:
      papers eval ../shared/data/scifact-train
      papers eval ./scifact --split test --json | jq '.modes.hybrid'
      papers eval ./scifact --mode keyword --mode hybrid
    """
    chosen = [m for m in MODE_ORDER if m in modes] if modes else list(MODE_ORDER)
    try:
        with tempfile.TemporaryDirectory(prefix="papers-eval-") as tmp:
            with progress_bar() as progress:
                result = evaluate_folder(
                    folder,
                    model=model,
                    modes=chosen,
                    split=split,
                    workdir=Path(tmp),
                    log=err,
                    progress=progress,
                )
    except PapersError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(output.eval_json(result))
    else:
        click.echo(output.eval_table(result))


eval_command = click.command("eval", context_settings=CONTEXT)(_eval)
