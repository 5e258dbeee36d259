"""Command-line options built from configuration dataclasses: one declaration, two readers.

A field's annotation gives the option's type (Literal choices for a `choices` rule), its
docstring the help, its default the `[default: ...]`, its `Rule` the range, checked when the
command line is parsed (one line, exit 2, before anything runs). `with_config_options` adds a
dataclass's fields to a command and hands it the values the user gave as one dict.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import typer

from gan_adapters.errors import SettingError
from gan_adapters.settings import Rule, field_docs, field_types, nested_config, rule_of


def rule_check(rule: Rule) -> Callable[[Any], Any]:
    """A typer callback holding an option's value (each value of a repeated one) to `rule`; the
    rule stays readable on it (`.rule`), so tests can derive the values to refuse."""

    def check(value: Any) -> Any:
        for item in value if isinstance(value, list | tuple) else [value]:
            problem = rule.problem(item) if item is not None else ""
            if problem:
                raise typer.BadParameter(problem)
        return value

    check.rule = rule
    return check


def ranged(*decls: str, help: str, **rule: Any) -> Any:
    """A typer option whose value is held to a rule: `ranged("--count", "-n", help=..., minimum=1)`."""
    return typer.Option(*decls, help=help, callback=rule_check(Rule(**rule)))


def flag_decls(name: str, field: dataclasses.Field) -> tuple[str, ...]:
    """How the command line spells a field: its rule's flag, or --field-name (--x/--no-x for a switch)."""
    flag = rule_of(field).flag
    if flag:
        return (flag,) if isinstance(flag, str) else tuple(flag)
    spelled = "--" + name.replace("_", "-")
    return (spelled,)


def declared_fields(cls: type) -> dict[str, tuple[type, dataclasses.Field]]:
    """Every field a flat table of `cls` may hold, with the class declaring it: its own, and those it
    reads flat from others (`AdapterConfig.flat_fields`: the registered kinds' own settings)."""
    flat = getattr(cls, "flat_fields", dict)()
    return flat | {f.name: (cls, f) for f in dataclasses.fields(cls)}


def flag_of(cls: type, key: str) -> str:
    """The primary flag of a field (`adapter.kind` -> --kind): what an error names."""
    head, _, rest = key.partition(".")
    owner, field = declared_fields(cls)[head]
    nested = nested_config(field_types(owner)[head])
    if rest and nested is not None:
        return flag_of(nested, rest)
    return flag_decls(head, field)[0].split("/")[0]


def _shown_default(field: dataclasses.Field) -> str | bool:
    """The default as help shows it (False: none to show; a switch shows its state in its name)."""
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if isinstance(default, bool) or default is None or default == [] or default == {}:
        return False
    return str(default)


def config_option(cls: type, name: str, choices: tuple[str, ...] | None = None) -> Any:
    """The annotated typer parameter type of one field (always optional: None means 'not given');
    `choices` replaces the declared ones (names read from a registry when the command line is built)."""
    owner, field = declared_fields(cls)[name]
    annotation, rule = field_types(owner)[name], rule_of(field)
    if choices is not None:
        rule = dataclasses.replace(rule, choices=choices)
    if rule.choices is not None:
        annotation = Literal[rule.choices]
    decls = flag_decls(name, field)
    if annotation is bool and "/" not in decls[0]:
        decls = (f"{decls[0]}/--no-{decls[0][2:]}", *decls[1:])
    help_text = field_docs(owner).get(name, name.replace("_", " ").capitalize() + ".")
    option = typer.Option(
        *decls, help=help_text, callback=rule_check(rule), show_default=_shown_default(field)
    )
    return Annotated[annotation | None, option]


class ConfigCommand:
    """A typer command with generated options, handed the values the user gave as one dict.

    The options are read when the command line is built, not when this module is imported, so an
    adapter kind registered later (a plugin, a test) brings its own flags."""

    def __init__(self, command: Callable[..., None], options: Callable[[], dict[str, Any]], into: str):
        functools.update_wrapper(self, command)
        self.command, self.options, self.into = command, options, into

    @property
    def __signature__(self) -> inspect.Signature:
        signature = inspect.signature(self.command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != self.into]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
            for name, annotation in self.options().items()
        ]
        return signature.replace(parameters=own + added)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name, None) for name in self.options()}
        chosen = {k: v for k, v in given.items() if v is not None}
        return self.command(*args, **{self.into: chosen}, **kwargs)


def with_options(
    options: Callable[[], dict[str, Any]], into: str
) -> Callable[[Callable[..., None]], ConfigCommand]:
    """Give a typer command the options `options()` makes when its command line is built (so a
    kind registered later brings its flags); it receives those the user gave as `into: dict`."""
    return lambda command: ConfigCommand(command, options, into)


def with_config_options(
    cls: type, names: Iterable[str], into: str, extra: dict[str, Any] | None = None
) -> Callable[[Callable[..., None]], ConfigCommand]:
    """Give a typer command an option per field of `cls` in `names` and the `extra` hand-made
    ones; it receives those the user gave as `into: dict` (field name -> value)."""
    fixed = {name: config_option(cls, name) for name in names} | (extra or {})
    return with_options(lambda: fixed, into)


def build_config(cls: type, base: dict[str, Any], given: dict[str, Any]) -> Any:
    """`cls` from a base (a recipe's values) with the command line's values on top; a refusal of a
    value the user typed names its flag."""
    try:
        return cls.from_dict(base | given)
    except SettingError as exc:
        if exc.key.partition(".")[0] in given:
            raise exc.as_flag(flag_of(cls, exc.key)) from exc
        raise
