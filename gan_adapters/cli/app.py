"""The `gan-adapters` app: its commands, `inspect` and `models`, and the entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gan_adapters.cli.evaluation import evaluate, sweep
from gan_adapters.cli.options import (
    Verbose,
    apply_adapter_options,
    configure_logging,
    console,
    err_console,
    with_adapter_options,
)
from gan_adapters.cli.pretrain import pretrain
from gan_adapters.cli.training import finetune, interpolate, sample
from gan_adapters.errors import GanAdaptersError

app = typer.Typer(
    help=(
        "Adapt a pretrained GAN generator to a new domain from 25-100 images.\n\n"
        "Adapters (ssa: per-channel scale/shift; apc: point-wise 1x1 conv; apgc: grouped "
        "point-wise 1x1 conv; cbn: per-class scale/shift) go after every normalisation "
        "layer; everything else stays frozen. Start with `gan-adapters finetune --help`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(finetune)
app.command()(sample)
app.command()(interpolate)
app.command("eval")(evaluate)
app.command()(sweep)
app.command()(pretrain)


@app.command()
@with_adapter_options
def inspect(
    model: Annotated[
        str, typer.Argument(help="Registry name (see `gan-adapters models`) or package.module:factory.")
    ],
    checkpoint: Annotated[Path | None, typer.Option(help="Weights to load into the model first.")] = None,
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="Skip downloading pretrained weights (smoke runs).")
    ] = False,
    save: Annotated[
        Path | None, typer.Option(help="Also write the (untrained, identity) adapter file here.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON here.")] = None,
    verbose: Verbose = False,
    *,
    adapter_options: dict[str, Any],
) -> None:
    """Show where adapters would go in a generator, and what they cost, without training.

    Example: gan-adapters inspect dcgan-faces --kind apgc --ratio 8
    """
    from gan_adapters import inject, save_adapters, summary
    from gan_adapters.generators.registry import load_generator
    from gan_adapters.surgery.config import AdapterConfig

    configure_logging(verbose)
    config = apply_adapter_options(AdapterConfig(), adapter_options)
    bundle = load_generator(model, checkpoint, random_weights=random_weights)
    adapted = inject(bundle.model, config=config, example_inputs=bundle.example_inputs())
    report = summary(adapted)
    console.print(report)
    if save is not None:
        console.print(f"adapter file: {save_adapters(adapted, save)} ({save.stat().st_size:,} bytes)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"summary JSON: {json_out}")


@app.command()
def models() -> None:
    """List the generators known by name."""
    from rich.table import Table

    from gan_adapters.generators.registry import GENERATORS

    table = Table("name", "what it is", "download")
    for name, entry in GENERATORS.items():
        table.add_row(name, entry.description, "once" if entry.needs_download else "no")
    console.print(table)
    console.print("Your own generator: package.module:factory returning a GeneratorBundle.")


def main() -> None:
    """Console entry point: clear one-line errors instead of tracebacks for bad input."""
    try:
        app()
    except GanAdaptersError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
