"""What the `gan-adapters` commands share: consoles, logging set-up, option types, and the one
set of adapter options that `inspect` and `finetune` both take."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress

from gan_adapters.cli.config_options import build_config, config_option, ranged, with_options
from gan_adapters.errors import ConfigError
from gan_adapters.surgery import ADAPTER_KINDS, AdapterConfig

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

ADAPTER_FIELDS = ("targets", "exclude", "conditional", "train_norm", "route", "fold", "pointwise_impl")
"""The shared AdapterConfig fields `inspect` and `finetune` take as options (beside --kind, the
registered kinds' own settings and --width)."""


def adapter_options() -> dict[str, Any]:
    """--kind (the registered kinds as its choices), the shared adapter options, and every
    registered kind's own settings (--ratio, --num-classes, ...), read from the registry now."""
    kind = {"kind": config_option(AdapterConfig, "kind", choices=tuple(sorted(ADAPTER_KINDS)))}
    shared = {name: config_option(AdapterConfig, name) for name in ADAPTER_FIELDS}
    own = {name: config_option(AdapterConfig, name) for name in AdapterConfig.flat_fields()}
    return kind | own | shared | {"widths": Widths}


with_adapter_options = with_options(adapter_options, "adapter_options")
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
    """The recipe's adapter with the command-line options on top: a new kind starts from its own
    settings' defaults; the same kind merges them as the kind says (apgc: a new size replaces the
    recipe's, since at most one size may be given)."""
    updates = dict(options)
    if "widths" in updates:
        updates["widths"] = parse_widths(updates["widths"])
    kind_owned = AdapterConfig.flat_fields()
    given_own = {k: updates.pop(k) for k in list(updates) if k in kind_owned}
    shared = {k: v for k, v in base.to_dict().items() if k not in base.settings.to_dict()}
    kind = updates.get("kind", base.kind)
    own = base.settings.merged(given_own) if kind == base.kind else given_own
    return build_config(AdapterConfig, shared | own, updates | given_own)


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
