"""`gan-adapters eval` and `sweep`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from gan_adapters.cli.config_options import build_config, ranged, with_config_options
from gan_adapters.cli.options import (
    OutFolder,
    TrustCode,
    Verbose,
    configure_logging,
    console,
)
from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.evaluator import EvalConfig
from gan_adapters.files import write_text_atomically

EVAL_FIELDS = ("samples", "prior", "sigma", "truncation", "seed", "kid_subsets", "kmmd_bandwidth")
"""The `EvalConfig` fields `eval` takes as options (help, defaults and ranges from the dataclass)."""


@with_config_options(EvalConfig, EVAL_FIELDS, "eval_options")
def evaluate(
    generated: Annotated[
        Path, typer.Argument(help="A run folder (it samples for itself) or a folder of generated images.")
    ],
    real: Annotated[Path, typer.Argument(help="A folder of real images of the target domain.")],
    cache: Annotated[
        Path | None, typer.Option(help="Feature cache folder.", show_default="~/.cache/gan-adapters/features")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write cached features.")
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the scores here.", show_default="RUN/eval.json")
    ] = None,
    unseen: Annotated[
        bool,
        typer.Option(
            "--unseen",
            help="Score against the images of REAL the run did not train on: REAL is the run's own data "
            "folder and its first IMAGES by name (those training took) are left out.",
        ),
    ] = False,
    trust_code: TrustCode = False,
    verbose: Verbose = False,
    *,
    eval_options: dict[str, Any],
) -> None:
    """Score generated images against real ones: KID (x1000, ± std over subsets), KMMD, FID, and
    precision / recall and density / coverage (fidelity and diversity apart, k = 5).

    Features: the FID Inception-v3 (offline). Rank methods by KID/KMMD: with 25-100 real images
    FID is biased and only indicative.

    Example: gan-adapters eval runs/emoji examples/data/emoji-faces -n 200

    On the images a run never saw (its data folder less the images it trained on):
    gan-adapters eval demo-out/emoji-source examples/data/heldout-animal-mammal --unseen
    """
    from gan_adapters.evaluation.evaluator import Evaluator, is_run_folder

    configure_logging(verbose)
    config = build_config(EvalConfig, {}, eval_options)
    evaluator = Evaluator(cache=None if no_cache else (cache or "default"))
    run = is_run_folder(generated)
    if unseen and not run:
        raise ConfigError(f"--unseen leaves out what a run trained on: {generated} is not a run folder")
    scores = (
        evaluator.score_run(generated, real, config, trust_code=trust_code, unseen=unseen)
        if run
        else evaluator.score_folders(generated, real, config)
    )
    console.print(_score_table(scores, f"{generated} vs {real}"))
    json_out = json_out or (generated / "eval.json" if run else None)
    if json_out is not None:
        _write_scores(
            json_out, scores, {"real_folder": str(real), "unseen_only": unseen, "eval": vars(config)}
        )
        console.print(f"scores: {json_out}")


def _write_scores(path: Path, scores, context: dict[str, Any]) -> None:
    """eval.json: every score, the degenerate verdict, the diversity distance's name, and `context`."""
    from gan_adapters.evaluation.diversity import DISTANCE_NAME

    extra = {"degenerate": scores.degenerate, "diversity_distance": DISTANCE_NAME}
    write_text_atomically(path, json.dumps(scores.to_dict() | extra | context, indent=2))


def _score_table(scores, title: str) -> Table:
    """The scores as the table `eval` prints: fidelity, then fidelity and diversity apart."""
    from gan_adapters.evaluation.diversity import DISTANCE_NAME

    table = Table("metric", "value", title=title, title_justify="left")
    table.add_row("KID x1000", f"{1000 * scores.kid:.2f} ± {1000 * scores.kid_std:.2f}")
    table.add_row("KMMD", f"{scores.kmmd:.5f} (bandwidth {scores.kmmd_bandwidth:.3g})")
    table.add_row("FID", f"{scores.fid:.2f}")
    if scores.precision is not None:
        table.add_row(
            "precision / recall",
            f"{scores.precision:.3f} / {scores.recall:.3f} (fidelity / diversity, k = 5)",
        )
        table.add_row("density / coverage", f"{scores.density:.3f} / {scores.coverage:.3f}")
    if scores.intra_cluster_diversity is not None:
        table.add_row("intra-cluster diversity", f"{scores.intra_cluster_diversity:.3f} ({DISTANCE_NAME})")
    if scores.degenerate:
        table.add_row("degenerate", scores.degenerate)
    table.add_row("images", f"{scores.generated} generated, {scores.real} real")
    return table


def sweep(  # long: typer declares each option as a parameter; the body is short
    recipe: Annotated[Path, typer.Argument(help="A sweep recipe (see recipes/research-*.toml).")],
    out: OutFolder = None,
    shard: Annotated[
        str,
        typer.Option(
            help="Run every N-th cell starting at the i-th (i/N, e.g. 0/4), so N processes, GPUs or "
            "SLURM array tasks share one sweep folder; cells are locked and one results.csv is merged."
        ),
    ] = "0/1",
    stage: Annotated[
        Literal["all", "train", "score"],
        typer.Option(
            help="all: train and score each cell. train: train only (a GPU box without the scoring "
            "network; needs fixed lrs). score: score the cells already trained, train none."
        ),
    ] = "all",
    time_limit: Annotated[
        float | None,
        ranged(
            "--time-limit",
            help="Minutes: start no cell that would end past this, judged by the cells run so far "
            "(for a GPU window of fixed length; the next call goes on where this one stopped).",
            above=0,
        ),
    ] = None,
    trust_code: TrustCode = False,
    verbose: Verbose = False,
) -> None:
    """Fine-tune and score every cell of a grid: methods x training-set sizes x seeds (x domains).

    Resumable: cells already in OUT/results.csv are skipped, an interrupted cell resumes from its
    checkpoint. Writes results.csv, results.md (the research table's layout) and results.png
    (KID and KMMD against the parameter ratio, one line per training-set size).

    Example: gan-adapters sweep recipes/research-cpu-reduced.toml -o runs/sweep

    On 4 GPUs: for i in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$i gan-adapters sweep R -o OUT --shard $i/4 & done

    Train on a GPU, score elsewhere: sweep R -o OUT --stage train --time-limit 8, bring OUT/cells
    back, then sweep R -o OUT --stage score.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gan_adapters.evaluation.grid import SweepConfig
    from gan_adapters.evaluation.sweep import parse_shard, run_sweep, trained_cells

    configure_logging(verbose)
    config = SweepConfig.from_toml(recipe)
    index, count = parse_shard(shard)
    out = out or Path("runs") / recipe.stem
    for domain, images, left in config.unscorable():
        console.print(
            f"left out: {domain.name} with {images} training images ({left} held-out images to score on)"
        )
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        cells = progress.add_task("cells", total=len(config.cells()))
        steps = progress.add_task("steps", total=config.base.steps)

        def on_cell(index: int, total: int, name: str, status: str) -> None:
            progress.update(cells, completed=index + (status != "train"), description=f"{name} ({status})")
            if status == "train":
                progress.reset(steps, total=config.base.steps)

        rows = run_sweep(
            config,
            out,
            on_cell=on_cell,
            trust_code=trust_code,
            shard=(index, count),
            stage=stage,
            time_limit=None if time_limit is None else 60 * time_limit,
            on_step=lambda report: progress.update(steps, completed=report.step),
        )
    total = len(config.cells())
    if stage == "train":
        trained = len(trained_cells(config, out))
        console.print(
            f"{trained} of {total} cells trained under {out / 'cells'}; score them with --stage score"
        )
        return
    console.print(
        f"{len(rows)} of {total} cells scored; table: {out / 'results.md'}; plot: {out / 'results.png'}"
    )
    if rows:
        console.print((out / "results.md").read_text())
