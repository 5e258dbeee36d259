"""`gan-adapters finetune`: adapt a generator to a folder of images (or a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gan_adapters.cli.config_options import build_config, with_config_options
from gan_adapters.cli.options import (
    ModelName,
    OutFolder,
    TrustCode,
    Verbose,
    apply_adapter_options,
    configure_logging,
    console,
    progress_bar,
    with_adapter_options,
)
from gan_adapters.errors import SettingError
from gan_adapters.training.recipe import TrainConfig

FINETUNE_FIELDS = (
    "recipe",
    "method",
    "recon_weight",
    "d_lr",
    "log_with",
    "images",
    "steps",
    "batch_size",
    "lr",
    "latent_lr",
    "perceptual",
    "perceptual_weights_path",
    "precision",
    "compile",
    "channels_last",
    "class_label",
    "grad_accum",
    "seed",
    "sample_every",
    "checkpoint_every",
    "strict_data",
    "consistency_weight",
    "select_by",
    "validation",
)
"""The recipe keys `finetune` takes as options (help, defaults and ranges from `TrainConfig`)."""


PROGRESS_COLUMNS = (
    TextColumn("[bold]fine-tuning"),
    BarColumn(),
    MofNCompleteColumn(),
    TextColumn("loss {task.fields[loss]}"),
    TimeElapsedColumn(),
    TextColumn("eta"),
    TimeRemainingColumn(),
)


@with_adapter_options
@with_config_options(TrainConfig, FINETUNE_FIELDS, "recipe_options")
def finetune(
    source: Annotated[Path, typer.Argument(help="A folder of target images, or a recipe .toml file.")],
    model: ModelName = None,
    out: OutFolder = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out.")] = False,
    trust_code: TrustCode = False,
    verbose: Verbose = False,
    *,
    recipe_options: dict[str, Any],
    adapter_options: dict[str, Any],
) -> None:
    """Fine-tune adapters on a folder of 25-100 images.

    Supervised recipe (default, Noguchi & Harada): each image gets a learned latent; the loss is
    L1 + perceptual + a latent regulariser; only the adapters, the latents (and a class
    embedding) train. Adversarial recipe (--recipe adversarial): hinge loss against a projected
    discriminator on frozen EfficientNet-Lite0 features, DiffAugment, z ~ N(0, I); only the
    adapters and the discriminator's heads train; --recon-weight blends the supervised terms in.
    Writes to --out: config.toml, metrics.csv, samples/step-*.png, checkpoint.pt and
    adapters.safetensors. Ctrl-C stops after the step with a checkpoint and prints how to resume.

    Example: gan-adapters finetune examples/data/emoji-faces --images 25 --kind apgc --ratio 4 -o runs/e

    Adversarial, logged to TensorBoard: gan-adapters finetune examples/data/emoji-animals
    --recipe adversarial --log-with tensorboard

    Several processes: accelerate launch --multi_gpu --num_processes 2 -m gan_adapters finetune ...
    (on CPUs: torchrun --nproc_per_node 2 -m gan_adapters finetune ...).
    """
    from accelerate import PartialState

    from gan_adapters.training.session import cpu_only_launch
    from gan_adapters.training.trainer import train

    configure_logging(verbose)
    config = _recipe_with_options(source, model, trust_code, recipe_options, adapter_options)
    out = out or Path("runs") / (Path(config.data).name or "run")

    main_process = PartialState(cpu=cpu_only_launch()).is_main_process
    with progress_bar(*PROGRESS_COLUMNS, disable=not main_process) as progress:
        task = progress.add_task("train", total=config.steps, loss="-")

        def on_step(report) -> None:
            progress.start()
            progress.update(task, completed=report.step, loss=f"{report.losses['loss']:.4f}")

        result = train(config, out, resume=resume, overwrite=overwrite, on_step=on_step)
    if main_process:
        _print_finished(result)
        if config.select_by:
            _select_best(result.paths.root, trust_code or model is not None)


def _recipe_with_options(
    source: Path, model: str | None, trust_code: bool, recipe_options: dict, adapter_options: dict
) -> TrainConfig:
    """The recipe file (or a folder's defaults) with the command line's values on top; a value
    refused is named as the user gave it (the key in the file, or the flag)."""
    from gan_adapters.generators.registry import refuse_untrusted_code

    recipe = TrainConfig.from_toml(source) if source.suffix == ".toml" else TrainConfig(data=str(source))
    if model is None:
        refuse_untrusted_code(recipe.model, source, trust_code)
    if not recipe.data:
        raise SettingError("data", "is missing: name the folder of target images", str(source))
    adapter = apply_adapter_options(recipe.adapter, adapter_options)
    given = recipe_options | ({"model": model} if model else {})
    return build_config(TrainConfig, recipe.to_dict() | {"adapter": adapter}, given)


def _select_best(root: Path, trust_code: bool) -> None:
    """Score each checkpoint on the validation images and keep the best (adapters-best.safetensors)."""
    from gan_adapters.evaluation.evaluator import Evaluator
    from gan_adapters.evaluation.selection import select_best

    selection = select_best(root, Evaluator(), trust_code=trust_code)
    scores = ", ".join(f"step {k}: {v:.4g}" for k, v in selection["scores"].items())
    console.print(
        f"best by {selection['by']}: step {selection['step']} ({scores}) -> {root / 'adapters-best.safetensors'}"
    )


def _print_finished(result) -> None:
    """Where the run's files are, and its last losses."""
    title = f"run finished: {result.steps} steps in {result.seconds:.0f} s"
    table = Table("what", "where", title=title, title_justify="left")
    size = result.paths.adapters.stat().st_size
    table.add_row("adapters (share this)", f"{result.paths.adapters} ({size:,} bytes)")
    table.add_row("sample grids", str(result.paths.samples))
    table.add_row("metrics", str(result.paths.metrics))
    table.add_row("config", str(result.paths.config))
    console.print(table)
    parts = [
        f"{name} {result.final[name]:.4f}"
        for name in ("l1", "perceptual", "g_adv", "d_loss")
        if name in result.final
    ]
    final = f"final loss {result.final.get('loss', float('nan')):.4f}"
    console.print(final + (f" ({', '.join(parts)})" if parts else ""))
