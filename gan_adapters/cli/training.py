"""`gan-adapters finetune`: adapt a generator to a folder of images (or a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gan_adapters.cli.options import (
    ModelName,
    OutFolder,
    TrustCode,
    Verbose,
    apply_adapter_options,
    configure_logging,
    console,
    with_adapter_options,
)
from gan_adapters.training.recipe import TrainConfig


@with_adapter_options
def finetune(  # long: typer declares each option as a parameter; the body is short
    source: Annotated[Path, typer.Argument(help="A folder of target images, or a recipe .toml file.")],
    model: ModelName = None,
    recipe: Annotated[
        str | None,
        typer.Option(
            help="supervised (Noguchi & Harada: per-image latents, L1 + perceptual) or adversarial "
            "(hinge loss against a projected discriminator, z ~ N(0, I)). [default: supervised]"
        ),
    ] = None,
    recon_weight: Annotated[
        float | None,
        typer.Option(help="adversarial: blend in the supervised terms with this weight. [default: 0]"),
    ] = None,
    d_lr: Annotated[
        float | None, typer.Option(help="adversarial: discriminator heads' learning rate. [default: 2e-3]")
    ] = None,
    log_with: Annotated[
        list[str] | None,
        typer.Option(
            help="Log losses and sample grids to an Accelerate tracker (tensorboard, wandb, ...; "
            "repeatable); files go to OUT/logs."
        ),
    ] = None,
    images: Annotated[
        int | None, typer.Option(help="Use the first N images of the folder (sorted by name).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps. [default: 10000]")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per step (all processes together). [default: 25]")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Adapter learning rate. [default: 5e-4]")] = None,
    latent_lr: Annotated[
        float | None, typer.Option(help="Per-image latent learning rate. [default: 0.05]")
    ] = None,
    perceptual: Annotated[
        str | None,
        typer.Option(
            help="Perceptual backbone: effnet-lite0, inception, vgg16 or none. [default: effnet-lite0]"
        ),
    ] = None,
    vgg_weights: Annotated[
        Path | None, typer.Option(help="VGG16 weights (torchvision format) for --perceptual vgg16.")
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="no, bf16 or fp16 (mixed precision, on CUDA). [default: no]")
    ] = None,
    compile: Annotated[
        bool | None, typer.Option("--compile/--eager", help="torch.compile the generator.")
    ] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Train in channels_last (faster; a generator that cannot is found by one probe step and "
            "falls back with a warning). [default: channels-last]",
        ),
    ] = None,
    class_label: Annotated[
        int | None,
        typer.Option(
            "--class",
            help="Class-conditional generators: adapt (and later sample) under this one class, as the "
            "research fine-tunes BigGAN from one class. [default: the bundle's own, e.g. class 0]",
        ),
    ] = None,
    grad_accum: Annotated[
        int | None, typer.Option(help="Accumulate gradients over K steps per optimizer update. [default: 1]")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed. [default: 0]")] = None,
    sample_every: Annotated[
        int | None, typer.Option(help="Write a sample grid every K steps. [default: 500]")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Checkpoint every K steps. [default: 500]")
    ] = None,
    out: OutFolder = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse unreadable files in the image folder instead of skipping them."
        ),
    ] = False,
    trust_code: TrustCode = False,
    verbose: Verbose = False,
    *,
    adapter_options: dict[str, Any],
) -> None:
    """Fine-tune adapters on a folder of 25-100 images.

    Supervised recipe (default, Noguchi & Harada): each image gets a learned latent; the loss is
    L1 + perceptual + a latent regulariser; only the adapters, the latents (and a class
    embedding) train. Adversarial recipe (--recipe adversarial): hinge loss against a projected
    discriminator on frozen EfficientNet-Lite0 features, DiffAugment, z ~ N(0, I); only the
    adapters and the discriminator's heads train; --recon-weight blends the supervised terms in. Writes to --out: config.toml,
    metrics.csv, samples/step-*.png, checkpoint.pt and adapters.safetensors.

    Example: gan-adapters finetune examples/data/emoji-faces --images 25 --kind apgc --ratio 4 --steps 800 -o runs/emoji

    Adversarial, logged to TensorBoard: gan-adapters finetune examples/data/emoji-animals --recipe adversarial --log-with tensorboard

    Several processes: accelerate launch --multi_gpu --num_processes 2 -m gan_adapters finetune ...
    (on CPUs: torchrun --nproc_per_node 2 -m gan_adapters finetune ...).
    """
    from accelerate import PartialState

    from gan_adapters.training.adapted import refuse_untrusted_code
    from gan_adapters.training.session import cpu_only_launch
    from gan_adapters.training.trainer import train

    configure_logging(verbose)
    config = TrainConfig.from_toml(source) if source.suffix == ".toml" else TrainConfig(data=str(source))
    if model is None:
        refuse_untrusted_code(config.model, source, trust_code)
    given = dict(recipe=recipe, recon_weight=recon_weight, d_lr=d_lr, log_with=log_with, model=model,
                 images=images, steps=steps, batch_size=batch_size, lr=lr, latent_lr=latent_lr, perceptual=perceptual, precision=precision, compile=compile, grad_accum=grad_accum, seed=seed,
                 channels_last=channels_last, class_label=class_label,
                 sample_every=sample_every, checkpoint_every=checkpoint_every, strict_data=strict or None,
                 perceptual_weights_path=str(vgg_weights) if vgg_weights else None)  # fmt: skip
    adapter = apply_adapter_options(config.adapter, adapter_options)
    config = TrainConfig.from_dict(
        config.to_dict() | {k: v for k, v in given.items() if v is not None} | {"adapter": adapter}
    )
    out = out or Path("runs") / (Path(config.data).name or "run")

    main_process = PartialState(cpu=cpu_only_launch()).is_main_process
    columns = (TextColumn("[bold]fine-tuning"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False, disable=not main_process) as progress:
        task = progress.add_task("train", total=config.steps, loss="-")

        def on_step(report) -> None:
            progress.update(task, completed=report.step, loss=f"{report.losses['loss']:.4f}")

        result = train(config, out, resume=resume, overwrite=overwrite, on_step=on_step)
    if not main_process:
        return
    table = Table(
        "what",
        "where",
        title=f"run finished: {result.steps} steps in {result.seconds:.0f} s",
        title_justify="left",
    )
    table.add_row(
        "adapters (share this)", f"{result.paths.adapters} ({result.paths.adapters.stat().st_size:,} bytes)"
    )
    table.add_row("sample grids", str(result.paths.samples))
    table.add_row("metrics", str(result.paths.metrics))
    table.add_row("config", str(result.paths.config))
    console.print(table)
    parts = [
        f"{name} {result.final[name]:.4f}"
        for name in ("l1", "perceptual", "g_adv", "d_loss")
        if name in result.final
    ]
    console.print(
        f"final loss {result.final.get('loss', float('nan')):.4f}"
        + (f" ({', '.join(parts)})" if parts else "")
    )
