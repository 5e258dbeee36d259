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
    architecture: Annotated[
        str,
        typer.Option(
            help="cdcgan: the lean class-conditional DCGAN (about 225 images/s at 32 px on 2 CPU cores); "
            "biggan: BigGAN's residual blocks and attention (for a GPU)."
        ),
    ] = "cdcgan",
    resolution: Annotated[int, typer.Option(help="Image size: 32 or 64 (biggan also 128).")] = 32,
    ch: Annotated[int, typer.Option(help="Channel multiplier (BigGAN-128 uses 96).")] = 32,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    steps: Annotated[int, typer.Option(help="Stop after this many steps.")] = 100_000,
    minutes: Annotated[float | None, typer.Option(help="Stop after this much training time.")] = None,
    precision: Annotated[str, typer.Option(help="no or bf16 (autocast, on CUDA).")] = "no",
    g_lr: Annotated[float, typer.Option(help="Generator learning rate (BigGAN's own: 1e-4).")] = 2e-4,
    d_lr: Annotated[float, typer.Option(help="Discriminator learning rate (BigGAN's own: 4e-4).")] = 2e-4,
    beta1: Annotated[float, typer.Option(help="Adam's first beta (BigGAN's own: 0).")] = 0.5,
    checkpoint_every: Annotated[
        int, typer.Option(help="Write the checkpoint and weights every N steps.")
    ] = 500,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads (give a background run fewer than the cores).")
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
        bool, typer.Option("--report", help="Afterwards: KID/FID against the data and a grid per class.")
    ] = False,
    report_samples: Annotated[int, typer.Option(help="--report: generated images scored.")] = 1000,
    report_real: Annotated[
        int | None,
        typer.Option(help="--report: training images scored against (a random subset). [default: all]"),
    ] = None,
    licence: Annotated[
        str | None, typer.Option(help="--report: the training images' licence, for the model card.")
    ] = None,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report-only",
            help="Train nothing: report on OUT/generator-ema.safetensors (say, what a GPU window brought back).",
        ),
    ] = False,
    verbose: Verbose = False,
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

    from gan_adapters.evaluation.pretrain_report import report as make_report
    from gan_adapters.training.pretrain import PretrainConfig
    from gan_adapters.training.pretrain import pretrain as run_pretraining

    configure_logging(verbose)
    if threads is not None:
        torch.set_num_threads(threads)
    if report_only:
        result = make_report(out / "generator-ema.safetensors", data, out, samples=report_samples,
                             real=report_real, card={"licence": licence} if licence else None)  # fmt: skip
        console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}))
        return
    config = PretrainConfig(architecture=architecture, model={"resolution": resolution, "ch": ch},
                            batch_size=batch_size, steps=steps, minutes=minutes, precision=precision,
                            g_lr=g_lr, d_lr=d_lr, beta1=beta1, checkpoint_every=checkpoint_every)  # fmt: skip
    columns = (TextColumn("pretraining"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("pretrain", total=config.steps, info="")

        def on_step(step: int, total: int, losses: dict[str, float], seconds: float) -> None:
            info = (
                f"D {losses['d_loss']:.3f} G {losses['g_loss']:.3f} {step * batch_size / seconds:.0f} img/s"
            )
            progress.update(task, completed=step, info=info)
            if not console.is_terminal and step % checkpoint_every == 0:  # a background run's log file
                progress.console.print(f"step {step}/{total}: {info}, {seconds / 60:.1f} min")

        card = run_pretraining(config, data, out, resume=resume, init_from=init_from, on_step=on_step)
    console.print_json(json.dumps({k: v for k, v in card.items() if k != "classes"}))
    if report:
        result = make_report(out / "generator-ema.safetensors", data, out, samples=report_samples,
                             real=report_real, card={"licence": licence} if licence else None)  # fmt: skip
        console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}))
