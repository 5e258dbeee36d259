"""The `gan-adapters` app: its commands, `inspect` and `models`, and the entry point."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.text import Text
from typer._click.exceptions import UsageError

from gan_adapters.cli.config_options import declared_fields, flag_decls, flag_of
from gan_adapters.cli.evaluation import evaluate, sweep
from gan_adapters.cli.generate import interpolate, sample
from gan_adapters.cli.options import (
    ADAPTER_FIELDS,
    Verbose,
    apply_adapter_options,
    configure_logging,
    console,
    err_console,
    with_adapter_options,
)
from gan_adapters.cli.pretrain import pretrain
from gan_adapters.cli.training import FINETUNE_FIELDS, finetune
from gan_adapters.errors import (
    ConfigError,
    GanAdaptersError,
    GeneratorError,
    RunInterruptedError,
    SettingError,
    SiteError,
)

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
        str,
        typer.Argument(
            help="Registry name (see `gan-adapters models`), package.module:factory, or "
            "path/to/file.py:factory returning a GeneratorBundle or a plain nn.Module."
        ),
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

    Your own code, before any training: gan-adapters inspect my_models.py:make_generator

    Example: gan-adapters inspect dcgan-faces --kind apgc --ratio 8
    """
    from gan_adapters import inject, save_adapters, summary
    from gan_adapters.surgery import AdapterConfig

    configure_logging(verbose)
    config = apply_adapter_options(AdapterConfig(), adapter_options)
    module, example_inputs = _generator_to_inspect(model, checkpoint, random_weights)
    try:
        adapted = inject(module, config=config, example_inputs=example_inputs)
    except SiteError as exc:
        if example_inputs is not None or "example_inputs" not in str(exc):
            raise
        raise SiteError(
            f"{exc}. {model} returned a bare nn.Module, so there are no inputs to measure it on: return a "
            "gan_adapters.GeneratorBundle (latent shape and forward_inputs) instead"
        ) from exc
    report = summary(adapted)
    console.print(report)
    if save is not None:
        console.print(f"adapter file: {save_adapters(adapted, save)} ({save.stat().st_size:,} bytes)")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"summary JSON: {json_out}")


def _generator_to_inspect(
    model: str, checkpoint: Path | None, random_weights: bool
) -> tuple[Any, tuple | None]:
    """The module named on the command line and example inputs for it (None for a plain module)."""
    from torch import nn

    from gan_adapters.files import read_weights
    from gan_adapters.generators.registry import (
        GeneratorBundle,
        call_factory,
        is_code_reference,
        load_generator,
    )

    if not is_code_reference(model):
        bundle = load_generator(model, checkpoint, random_weights=random_weights)
        return bundle.model, bundle.example_inputs()
    built = call_factory(model)
    if isinstance(built, GeneratorBundle):
        module, inputs = built.model, built.example_inputs()
    elif isinstance(built, nn.Module):
        module, inputs = built.eval(), None
    else:
        raise GeneratorError(
            f"{model} returned {type(built).__name__}, not an nn.Module or a GeneratorBundle"
        )
    if checkpoint is not None:
        module.load_state_dict(read_weights(checkpoint))
    return module, inputs


@app.command()
def models() -> None:
    """List the generators known by name (and say how to bring your own).

    Example: gan-adapters models, then gan-adapters inspect cdcgan-emoji-32
    """
    from rich.table import Table

    from gan_adapters.generators.registry import GENERATORS

    table = Table("name", "what it is", "download")
    for name, entry in GENERATORS.items():
        table.add_row(name, entry.description, "once" if entry.needs_download else "no")
    console.print(table)
    console.print("Your own generator: package.module:factory returning a GeneratorBundle.")


PARAMETER_FLAGS = {
    "trust_code": "--trust-code",
    "model": "--model",
    "resume": "--resume",
    "overwrite": "--overwrite",
}
"""Keyword arguments of the library's functions that messages name (as `name`), and their flags."""


def option_flags() -> dict[str, str]:
    """Every recipe and adapter key `finetune` takes as an option (a registered kind's own settings
    included), and its flag; and the parameters above (other keys stay `key`: set in a recipe)."""
    from gan_adapters.surgery import AdapterConfig
    from gan_adapters.training.recipe import TrainConfig

    adapter_keys = ("kind", *ADAPTER_FIELDS, *AdapterConfig.flat_fields())
    flags = {name: flag_of(AdapterConfig, name) for name in adapter_keys}
    flags |= {name: flag_of(TrainConfig, name) for name in FINETUNE_FIELDS}
    return flags | PARAMETER_FLAGS


def keyword_flags() -> dict[str, str]:
    """The library's keywords in messages (`ratio=`, `targets=`) and how the command line spells
    the same choice (`--ratio`, `-t/--target`)."""
    from gan_adapters.surgery import AdapterConfig

    fields = declared_fields(AdapterConfig)
    spelled = {
        name: flag_decls(name, fields[name][1]) for name in (*ADAPTER_FIELDS, *AdapterConfig.flat_fields())
    }
    return {f"{name}=": "/".join(sorted(decls, key=len)) for name, decls in spelled.items()}


def in_cli_terms(message: str) -> str:
    """An error message in the command line's terms: a key the library names as `key` becomes its
    flag, and keywords (`targets=`) become flags (`-t/--target`)."""
    flags = option_flags()
    message = re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), message)
    for keyword, flag in keyword_flags().items():
        message = re.sub(rf"(?<![\w.]){re.escape(keyword)}(?=[\w'\"\[(-])", flag + " ", message)
        message = re.sub(rf"(?<![\w.]){re.escape(keyword)}", flag, message)
    return message


PLUGIN_GROUP = "gan_adapters.plugins"
"""The entry-point group of installed packages that register adapter kinds or generators."""


def load_plugins() -> None:
    """Import the modules that installed packages list under the `gan_adapters.plugins` entry
    points (`[project.entry-points."gan_adapters.plugins"]`), so the kinds and generators they
    register have their names and flags on the command line."""
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()
        except Exception as exc:  # a broken plugin is named, not a traceback from its import
            package = entry.dist.name if entry.dist else "an installed package"
            raise ConfigError(
                f"the plugin {entry.name!r} of {package} ({entry.value}) failed to import: {exc}; "
                f"fix or uninstall {package}"
            ) from exc


def main(args: list[str] | None = None) -> None:
    """Console entry point: one line and exit 2 for bad input (a flag's value, a recipe key, a file),
    130 after Ctrl-C; `-v` shows the traceback behind a refusal."""
    args = sys.argv[1:] if args is None else args
    try:
        load_plugins()
        code = typer.main.get_command(app).main(args, prog_name="gan-adapters", standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `gan-adapters` or a command alone: its help
            err_console.print(exc.format_message(), highlight=False, markup=False)
        else:
            _refuse(exc.format_message().replace("Value error, ", "") + " (see --help)", args)
        raise SystemExit(2) from None
    except RunInterruptedError as exc:
        err_console.print(resume_hint(str(exc), args), highlight=False, soft_wrap=True)
        raise SystemExit(130) from None
    except GanAdaptersError as exc:
        _refuse(in_cli_terms(_flagged(exc)), args)
        raise SystemExit(2) from None
    except FileNotFoundError as exc:  # a path the user typed (say, `eval nope/ DIR`)
        _refuse(f"no such file or folder: {exc.filename or exc}", args)
        raise SystemExit(2) from None
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted", highlight=False)
        raise SystemExit(130) from None
    raise SystemExit(code or 0)


def resume_hint(message: str, args: list[str]) -> str:
    """What to run after Ctrl-C: the same command with --resume where the command takes it
    (finetune, pretrain), else the same command (a sweep skips finished cells, resumes the cut one)."""
    command = typer.main.get_command(app).commands.get(args[0]) if args else None
    takes_resume = command is not None and any("--resume" in p.opts for p in command.params)
    if not takes_resume:
        head = message.split(";")[0]
        return f"{head}; the same command goes on from there:\n  gan-adapters {shlex.join(args)}"
    again = [a for a in args if a != "--overwrite"] + ([] if "--resume" in args else ["--resume"])
    return f"{in_cli_terms(message)}:\n  gan-adapters {shlex.join(again)}"


def _flagged(exc: GanAdaptersError) -> str:
    """A library refusal of one setting said of its flag, when the command line has one."""
    if isinstance(exc, SettingError) and exc.where is None and exc.key in option_flags():
        return f"{option_flags()[exc.key]} {exc.problem}"
    return str(exc)


def _refuse(message: str, args: list[str]) -> None:
    """Print a refusal as one line; with -v/--verbose also the traceback behind it."""
    if "-v" in args or "--verbose" in args:
        err_console.print_exception()
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
