"""`gan-adapters pretrain`: train a class-conditional source model on a labelled image tensor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from gan_adapters.cli.config_options import build_config, ranged, with_config_options
from gan_adapters.cli.options import Verbose, configure_logging, console, progress_bar
from gan_adapters.pretraining.config import PretrainConfig

PRETRAIN_FIELDS = (
    "batch_size",
    "steps",
    "minutes",
    "precision",
    "g_lr",
    "d_lr",
    "beta1",
    "checkpoint_every",
    "discriminator",
    "disc_width",
    "balanced",
)
"""The pretraining settings `pretrain` takes as options (help, defaults and ranges from `PretrainConfig`)."""


@with_config_options(PretrainConfig, PRETRAIN_FIELDS, "pretrain_options")
def pretrain(  # long: typer declares each option as a parameter; the body is short
    data: Annotated[
        Path,
        typer.Argument(
            help="Labelled image tensor (.safetensors, or .safetensors.gz) from render_emoji.py --tensor."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    architecture: Annotated[
        str,
        typer.Option(
            help="cdcgan: the lean class-conditional DCGAN (about 225 images/s at 32 px on 2 CPU cores); "
            "biggan: BigGAN's residual blocks and attention (for a GPU)."
        ),
    ] = "cdcgan",
    resolution: Annotated[int, typer.Option(help="Image size: 32 or 64 (biggan also 128).")] = 32,
    ch: Annotated[int, ranged("--ch", help="Channel multiplier (BigGAN-128 uses 96).", minimum=1)] = 32,
    threads: Annotated[
        int | None,
        ranged("--threads", help="CPU threads (give a background run fewer than the cores).", minimum=1),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.pt.")] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Go on from the portable weights (weights-N.safetensors) of an earlier run in this folder, "
            "e.g. what one GPU window brought back; the optimisers start afresh."
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Afterwards: KID, FID, precision, recall, density, coverage and a grid per class.",
        ),
    ] = False,
    report_samples: Annotated[
        int, ranged("--report-samples", help="--report: generated images scored.", minimum=6)
    ] = 1000,
    report_real: Annotated[
        int | None,
        ranged(
            "--report-real",
            help="--report: training images scored against (a random subset).",
            minimum=6,
        ),
    ] = None,
    licence: Annotated[
        str | None, typer.Option(help="--report: the training images' licence, for the model card.")
    ] = None,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="Train nothing: report on OUT/generator-ema.safetensors (say, what a GPU window "
            "brought back).",
        ),
    ] = False,
    verbose: Verbose = False,
    *,
    pretrain_options: dict[str, Any],
) -> None:
    """Pretrain a class-conditional source model (hinge loss, DiffAugment, EMA) to adapt from.

    Writes, at every checkpoint, OUT/checkpoint.pt (--resume goes on bit-exactly),
    OUT/generator-ema.safetensors (fp16, with its architecture, config and model card) and
    OUT/weights-N.safetensors (G and D in fp16, files under 15 MB, for --init-from on another
    machine); with --report also OUT/report.json and OUT/samples-per-class.png.

    Example (the shipped cdcgan-emoji-32, 2 h on 2 CPU cores):
    gan-adapters pretrain data/emoji-32-train.safetensors -o runs/cdcgan-emoji --minutes 120 --report

    Example (BigGAN on a GPU): gan-adapters pretrain data/emoji-64-train.safetensors.gz -o runs/biggan
    --architecture biggan --resolution 64 --g-lr 1e-4 --d-lr 4e-4 --beta1 0 --precision bf16 --minutes 9
    """
    import torch

    from gan_adapters.pretraining.loop import pretrain as run_pretraining

    configure_logging(verbose)
    if threads is not None:
        torch.set_num_threads(threads)
    base = {"architecture": architecture, "model": {"resolution": resolution, "ch": ch}}
    config = build_config(PretrainConfig, base, pretrain_options)
    if not report_only:
        card = _train_with_progress(run_pretraining, config, data, out, resume, init_from)
        console.print_json(json.dumps({k: v for k, v in card.items() if k != "classes"}))
    if report or report_only:
        _report(data, out, report_samples, report_real, licence)


def _train_with_progress(
    run_pretraining, config: PretrainConfig, data: Path, out: Path, resume: bool, init_from
) -> dict:
    """Run the pretraining under a progress bar (a log line per checkpoint when not on a terminal)."""
    columns = (
        TextColumn("pretraining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    with progress_bar(*columns) as progress:
        task = progress.add_task("pretrain", total=config.steps, info="")

        def on_step(step: int, total: int, losses: dict[str, float], seconds: float, rate: float) -> None:
            info = f"D {losses['d_loss']:.3f} G {losses['g_loss']:.3f} {rate:.0f} img/s"
            progress.start()
            progress.update(task, completed=step, info=info)
            if not console.is_terminal and step % config.checkpoint_every == 0:  # a background run's log file
                progress.console.print(f"step {step}/{total}: {info}, {seconds / 60:.1f} min")

        return run_pretraining(config, data, out, resume=resume, init_from=init_from, on_step=on_step)


def _report(data: Path, out: Path, samples: int, real: int | None, licence: str | None) -> None:
    """Score OUT/generator-ema.safetensors against the data and print the numbers."""
    from gan_adapters.evaluation.pretrain_report import report as make_report

    card = {"licence": licence} if licence else None
    result = make_report(out / "generator-ema.safetensors", data, out, samples=samples, real=real, card=card)
    console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}))
