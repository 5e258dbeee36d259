"""The `gan-adapters` command line (typer + rich)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from gan_adapters.errors import GanAdaptersError

app = typer.Typer(
    help=(
        "Adapt a pretrained GAN generator to a new domain from 25-100 images.\n\n"
        "Adapters (ssa: per-channel scale/shift; apc: point-wise 1x1 conv; apgc: grouped "
        "point-wise 1x1 conv; cbn: per-class scale/shift) go after every normalisation "
        "layer; everything else stays frozen."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

KindOption = Annotated[str, typer.Option("--kind", "-k", help="Adapter kind: ssa, cbn, apc or apgc.")]
GroupsOption = Annotated[int | None, typer.Option(help="apgc: number of groups per layer (torch's groups=).")]
GroupSizeOption = Annotated[int | None, typer.Option(help="apgc: channels per group.")]
RatioOption = Annotated[
    float | None,
    typer.Option(help="apgc: parameters per layer against ssa (group size = 2 x ratio); default 4."),
]
TargetsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", "-t",
        help="Layers to adapt instead of the normalisation layers: a class name or a regex "
        "over module paths (repeatable), e.g. -t Conv2DMod.",
    ),
]  # fmt: skip
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Class name or path regex to leave alone (repeatable)."),
]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
    )


@app.command()
def inspect(
    model: Annotated[
        str, typer.Argument(help="Registry name (see `gan-adapters models`) or package.module:factory.")
    ],
    kind: KindOption = "apgc",
    groups: GroupsOption = None,
    group_size: GroupSizeOption = None,
    ratio: RatioOption = None,
    target: TargetsOption = None,
    exclude: ExcludeOption = None,
    conditional: Annotated[
        bool, typer.Option(help="Condition adapters on the layer's class condition.")
    ] = False,
    train_norm: Annotated[
        bool, typer.Option(help="Also train the normalisation layers' own affine.")
    ] = False,
    method: Annotated[str, typer.Option(help="Site discovery: auto, fx, export or module.")] = "auto",
    checkpoint: Annotated[Path | None, typer.Option(help="Weights to load into the model first.")] = None,
    random_weights: Annotated[
        bool, typer.Option(help="Skip downloading pretrained weights (smoke runs).")
    ] = False,
    save: Annotated[
        Path | None, typer.Option(help="Also write the (untrained, identity) adapter file here.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON here.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log how sites were found.")] = False,
) -> None:
    """Show where adapters would go in a generator, and what they cost, without training.

    Example: gan-adapters inspect dcgan-faces --kind apgc --ratio 8
    """
    from gan_adapters import inject, save_adapters, summary
    from gan_adapters.models import load_generator

    _configure_logging(verbose)
    bundle = load_generator(model, checkpoint, random_weights=random_weights)
    adapted = inject(
        bundle.model, kind=kind, groups=groups, group_size=group_size, ratio=ratio,
        targets=target or None, exclude=exclude or None, conditional=conditional,
        train_norm=train_norm, method=method, example_inputs=bundle.example_inputs(),
    )  # fmt: skip
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

    from gan_adapters.models import MODELS

    table = Table("name", "what it is", "download")
    for name, entry in MODELS.items():
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
