"""What the `gan-adapters` commands share: consoles, logging set-up, option types, and the one
set of adapter options that `inspect` and `finetune` both take."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from gan_adapters.errors import ConfigError
from gan_adapters.surgery.config import AdapterConfig

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
        "module paths (repeatable), e.g. -t Conv2DMod -x to_rgb (StyleGAN2: its 3-channel to_rgb convs are Conv2DMod too).",
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
Route = Annotated[
    str | None,
    typer.Option(
        help="How sites are found: auto (fx, then torch.export, then module matching), fx, export "
        "or module. [default: auto]"
    ),
]
Fold = Annotated[
    str | None,
    typer.Option(
        help="Folding at a BatchNorm in eval mode: exact (ssa into the norm, bit-exact), fast (also the "
        "norm into apc/apgc where the measured path table says it is faster), always, never. [default: exact]"
    ),
]
PointwiseImpl = Annotated[
    str | None,
    typer.Option(
        help="How apc/apgc run their grouped 1x1: auto (measured table), conv, bmm or dense. [default: auto]"
    ),
]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same images).")]
Prior = Annotated[
    str,
    typer.Option(
        help="'auto': fitted for a supervised run, normal for an adversarial one; "
        "'fitted': a Gaussian fitted to the run's learned latents (samples where training was); "
        "'normal': N(0, sigma^2), the paper's protocol (sigma 1 for adversarial runs)."
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

ADAPTER_OPTIONS: dict[str, Any] = {
    "kind": Kind, "groups": Groups, "group_size": GroupSize, "ratio": Ratio, "targets": Targets,
    "exclude": Exclude, "conditional": Conditional, "train_norm": TrainNorm, "route": Route, "fold": Fold,
    "pointwise_impl": PointwiseImpl, "widths": Widths,
}  # fmt: skip
"""The adapter options, by AdapterConfig field; `with_adapter_options` adds them to a command."""


def with_adapter_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a typer command the shared adapter options; it receives those the user gave as
    `adapter_options: dict` (field name -> value), to apply with `apply_adapter_options`."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "adapter_options"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        for name, annotation in ADAPTER_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name, None) for name in ADAPTER_OPTIONS}
        return command(*args, adapter_options={k: v for k, v in given.items() if v is not None}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + added)
    return wrapper


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
    return AdapterConfig.from_dict(dataclasses.asdict(base) | updates)


def configure_logging(verbose: bool) -> None:
    """Library logs through rich on stderr; warnings only unless --verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )
