"""What the `gan-adapters` commands share: consoles, logging set-up and option types."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)

Kind = Annotated[
    str | None, typer.Option("--kind", "-k", help="Adapter kind: ssa, cbn, apc or apgc. [default: apgc]")
]
Groups = Annotated[int | None, typer.Option(help="apgc: number of groups per layer (torch's groups=).")]
GroupSize = Annotated[int | None, typer.Option(help="apgc: channels per group.")]
Ratio = Annotated[
    float | None,
    typer.Option(help="apgc: parameters per layer against ssa (group size = 2 x ratio). [default: 4]"),
]
Targets = Annotated[
    list[str] | None,
    typer.Option(
        "--target", "-t",
        help="Layers to adapt instead of the normalisation layers: a class name or a regex over "
        "module paths (repeatable), e.g. -t Conv2DMod.",
    ),
]  # fmt: skip
Exclude = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Class name or path regex to leave alone (repeatable)."),
]
Conditional = Annotated[
    bool | None,
    typer.Option("--conditional/--static", help="Condition adapters on the layer's class condition."),
]
TrainNorm = Annotated[
    bool | None,
    typer.Option("--train-norm/--frozen-norm", help="Also train the normalisation layers' own affine."),
]
Method = Annotated[
    str | None, typer.Option(help="Site discovery: auto, fx, export or module. [default: auto]")
]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same images).")]
Prior = Annotated[
    str,
    typer.Option(
        help="'fitted': a Gaussian fitted to the run's learned latents (samples where training was); "
        "'normal': N(0, sigma^2), the paper's protocol."
    ),
]
Sigma = Annotated[
    float | None,
    typer.Option(
        help="Normal prior: its std [default: the run's sample_sigma, 0.5]. "
        "Fitted prior: a factor on the fitted std [default: 1]."
    ),
]
Truncation = Annotated[
    float | None, typer.Option(help="Redraw latent entries beyond +-truncation (the truncation trick).")
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Registry name or package.module:factory (see `gan-adapters models`)."
    ),
]
OutFolder = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more (how sites were found, ...).")]


def configure_logging(verbose: bool) -> None:
    """Library logs through rich on stderr; warnings only unless --verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )
