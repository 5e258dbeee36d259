"""One declaration per configuration field: its type (the annotation), its range and its flag.

A configuration dataclass declares a field with `setting(default, minimum=..., choices=...)`, or a
plain default when the type says all there is. `check_settings` holds every value to its
declaration before anything runs: integers are integers (not floats, not booleans), numbers are
finite, tables are tables, counts in range. A refusal is a `SettingError` naming the key; whoever
read the value says it in the user's own terms: `--steps` on the command line, `steps` in
recipe.toml, `steps=` in Python. The CLI builds its options from the same declarations
(`cli/config_options.py`), with each field's docstring as its help.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from typing import Any

from gan_adapters.errors import SettingError

RULES = "gan_adapters.rule"
"""The metadata key of a field's `Rule`."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field's value may be, beyond its type."""

    minimum: float | None = None
    above: float | None = None
    """Exclusive lower bound (learning rates, sigmas: above 0)."""
    maximum: float | None = None
    choices: tuple[str | int, ...] | None = None
    flag: str | tuple[str, ...] | None = None
    """The command line's spelling when it is not --field-name: "--class", ("--target", "-t"),
    "--compile/--eager" for a switch."""

    def problem(self, value: Any) -> str:
        """Why `value` breaks this rule ('' when it does not)."""
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}, got {value!r}"
        if not isinstance(value, int | float) or isinstance(value, bool):
            return ""
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}, got {value:g}"
        if self.above is not None and value <= self.above:
            return f"must be above {self.above:g}, got {value:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}, got {value:g}"
        return ""


def setting(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **rule: Any
) -> Any:
    """A dataclass field with a `Rule` (minimum, above, maximum, choices, flag)."""
    if "choices" in rule:
        rule["choices"] = tuple(rule["choices"])
    return dataclasses.field(default=default, default_factory=default_factory, metadata={RULES: Rule(**rule)})


def rule_of(field: dataclasses.Field) -> Rule:
    """A field's rule (an empty one for a plain field)."""
    return field.metadata.get(RULES, Rule())


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of a dataclass."""
    return typing.get_type_hints(cls)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), by name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for first, second in itertools.pairwise(body):
            if (
                isinstance(first, ast.AnnAssign)
                and isinstance(first.target, ast.Name)
                and isinstance(second, ast.Expr)
                and isinstance(second.value, ast.Constant)
                and isinstance(second.value.value, str)
            ):
                docs[first.target.id] = " ".join(second.value.value.split())
    return docs


def describe(value: Any) -> str:
    """A value as the user wrote it: true, 3.7, the string 'ten', a table, a list."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def type_problem(value: Any, annotation: Any) -> str:
    """Why `value` is not of the annotated type ('' when it is); nested configs are not checked here."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return ""
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in arguments:
            return ""
        problems = [type_problem(value, a) for a in arguments if a is not type(None)]
        return "" if "" in problems else problems[0]
    if value is None:
        return "must be given (it has no default)"
    if annotation is bool:
        return "" if isinstance(value, bool) else f"must be true or false, got {describe(value)}"
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return "" if ok else f"must be a whole number, got {describe(value)}"
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {describe(value)}"
        return "" if math.isfinite(value) else f"must be a finite number, got {value}"
    if annotation is str:
        return "" if isinstance(value, str) else f"must be text, got {describe(value)}"
    if origin is list:
        if not isinstance(value, list | tuple):
            return f"must be a list, got {describe(value)}"
        inner = [type_problem(v, arguments[0]) for v in value] if arguments else []
        return next((f"entries {p}" for p in inner if p), "")
    if origin is dict:
        return "" if isinstance(value, dict) else f"must be a table, got {describe(value)}"
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        ok = isinstance(value, annotation | dict)
        return "" if ok else f"must be a table, got {describe(value)}"
    return ""


def nested_config(annotation: Any) -> type | None:
    """The dataclass a field holds (or may hold), if any."""
    candidates = typing.get_args(annotation) or (annotation,)
    return next((a for a in candidates if isinstance(a, type) and dataclasses.is_dataclass(a)), None)


def check_settings(config: Any) -> None:
    """Hold every field of a dataclass instance to its type and rule; convert nested tables into
    their dataclass (a refusal inside names the whole path, `adapter.kind`)."""
    hints = field_types(type(config))
    for field in dataclasses.fields(config):
        value, annotation = getattr(config, field.name), hints[field.name]
        problem = type_problem(value, annotation) or (
            rule_of(field).problem(value) if value is not None else ""
        )
        if problem:
            raise SettingError(field.name, problem)
        nested = nested_config(annotation)
        if nested is not None and isinstance(value, dict):
            try:
                setattr(config, field.name, nested.from_dict(value))
            except SettingError as exc:
                raise SettingError(f"{field.name}.{exc.key}", exc.problem) from exc
