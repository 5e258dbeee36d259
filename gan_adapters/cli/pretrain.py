"""`gan-adapters pretrain`: train the project's BigGAN source model on a labelled image tensor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gan_adapters.cli.options import Verbose, configure_logging, console


def pretrain(  # long: typer declares each option as a parameter; the body is short
    data: Annotated[
        Path,
        typer.Argument(
            help="Labelled image tensor (.safetensors, or .safetensors.gz) from render_emoji.py --tensor."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    resolution: Annotated[int, typer.Option(help="Image size: 32, 64 or 128.")] = 64,
    ch: Annotated[int, typer.Option(help="Channel multiplier (BigGAN-128 uses 96).")] = 32,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    steps: Annotated[int, typer.Option(help="Stop after this many steps.")] = 100_000,
    minutes: Annotated[float | None, typer.Option(help="Stop after this much training time.")] = None,
    precision: Annotated[str, typer.Option(help="no or bf16 (autocast, on CUDA).")] = "no",
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.pt.")] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Go on from the portable weights (weights-N.safetensors) of an earlier run in this folder, "
            "e.g. what one GPU window brought back; the optimisers start afresh."
        ),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Afterwards: KID/FID against the data and a grid per class.")
    ] = False,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="Train nothing: report on OUT/generator-ema.safetensors (say, what a GPU window brought back).",
        ),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Pretrain a class-conditional BigGAN (hinge loss, DiffAugment, EMA) to serve as a source model.

    Writes OUT/checkpoint.pt (resumable), OUT/generator-ema.safetensors (fp16, with its config and
    model card) and OUT/weights-N.safetensors (G, EMA, D in files under 15 MB, for --init-from);
    with --report also OUT/report.json and OUT/samples-per-class.png.

    Example: gan-adapters pretrain data/emoji-64-train.safetensors.gz -o runs/biggan-emoji --minutes 9 --precision bf16 --report
    """
    from gan_adapters.evaluation.pretrain_report import report as make_report
    from gan_adapters.generators.biggan import BigGANConfig
    from gan_adapters.training.pretrain import PretrainConfig
    from gan_adapters.training.pretrain import pretrain as run_pretraining

    configure_logging(verbose)
    if report_only:
        result = make_report(out / "generator-ema.safetensors", data, out)
        console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}))
        return
    config = PretrainConfig(model=BigGANConfig(resolution=resolution, ch=ch), batch_size=batch_size,
                            steps=steps, minutes=minutes, precision=precision)  # fmt: skip
    columns = (TextColumn("pretraining"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("pretrain", total=config.steps, info="")

        def on_step(step: int, total: int, losses: dict[str, float], seconds: float) -> None:
            info = (
                f"D {losses['d_loss']:.3f} G {losses['g_loss']:.3f} {step * batch_size / seconds:.0f} img/s"
            )
            progress.update(task, completed=step, info=info)

        card = run_pretraining(config, data, out, resume=resume, init_from=init_from, on_step=on_step)
    console.print_json(json.dumps({k: v for k, v in card.items() if k != "classes"}))
    if report:
        result = make_report(out / "generator-ema.safetensors", data, out)
        console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}))
