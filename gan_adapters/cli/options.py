"""What the `gan-adapters` commands share: consoles, logging set-up, option types, and the one
set of adapter options that `inspect` and `finetune` both take."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress

from gan_adapters.cli.config_options import build_config, ranged, with_config_options
from gan_adapters.errors import ConfigError
from gan_adapters.surgery import AdapterConfig

console = Console()
err_console = Console(stderr=True)

Seed = Annotated[int, ranged("--seed", help="Random seed (same seed, same images).", minimum=0)]
Prior = Annotated[
    Literal["auto", "fitted", "normal"],
    typer.Option(
        help="'auto': fitted for a supervised run, normal for an adversarial one; "
        "'fitted': a Gaussian fitted to the run's learned latents (samples where training was); "
        "'normal': N(0, sigma^2), the paper's protocol (sigma 1 for adversarial runs)."
    ),
]
Sigma = Annotated[
    float | None,
    ranged(
        "--sigma",
        help="Normal prior: its std (the run's sample_sigma, 0.5, when not given). "
        "Fitted prior: a factor on the fitted std (1 when not given).",
        above=0,
    ),
]
Truncation = Annotated[
    float | None,
    ranged("--truncation", help="Redraw latent entries beyond +-truncation (the truncation trick).", above=0),
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Registry name (see `gan-adapters models`), package.module:factory or path/to/file.py:factory "
        "returning a GeneratorBundle.",
    ),
]
OutFolder = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log more (how sites were found, ...).")]
TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-code",
        help="Allow a run folder or recipe that names its generator as package.module:factory to "
        "import that module. Only for files you trust: importing runs their code.",
    ),
]

Widths = Annotated[
    list[str] | None,
    typer.Option(
        "--width",
        help="Channel count of targeted layers that state none, PATTERN=C (class name or path regex; "
        "repeatable), e.g. --width GLU=64.",
    ),
]

ADAPTER_FIELDS = (
    "kind",
    "groups",
    "group_size",
    "ratio",
    "targets",
    "exclude",
    "conditional",
    "train_norm",
    "route",
    "fold",
    "pointwise_impl",
)
"""The AdapterConfig fields `inspect` and `finetune` take as options (and --width)."""

with_adapter_options = with_config_options(
    AdapterConfig, ADAPTER_FIELDS, "adapter_options", {"widths": Widths}
)
"""Give a typer command the adapter options; it receives those the user gave as
`adapter_options: dict` (field name -> value), to apply with `apply_adapter_options`."""


def parse_widths(entries: list[str]) -> dict[str, int]:
    """--width PATTERN=C entries as {PATTERN: C}, refusing anything else."""
    widths = {}
    for entry in entries:
        pattern, _, count = entry.rpartition("=")
        if not pattern or not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--width takes PATTERN=C with C a positive channel count, got {entry!r}")
        widths[pattern] = int(count)
    return widths


def apply_adapter_options(base: AdapterConfig, options: dict[str, Any]) -> AdapterConfig:
    """The recipe's adapter with the command-line options on top (a new kind or size replaces
    every size of the recipe, since at most one size may be given)."""
    updates = dict(options)
    if "widths" in updates:
        updates["widths"] = parse_widths(updates["widths"])
    if any(k in updates for k in ("kind", "groups", "group_size", "ratio")):
        updates = {"groups": None, "group_size": None, "ratio": None} | updates
    return build_config(AdapterConfig, dataclasses.asdict(base), updates)


@contextmanager
def progress_bar(*columns: Any, disable: bool = False) -> Iterator[Progress]:
    """A rich progress bar that shows from its first `start()` (call it with each update): a run
    refused before its first step prints its one error line, no empty bar."""
    progress = Progress(*columns, console=console, disable=disable)
    try:
        yield progress
    finally:
        if progress.live.is_started:
            progress.stop()


def configure_logging(verbose: bool) -> None:
    """Library logs through rich on stderr; warnings only unless --verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )
