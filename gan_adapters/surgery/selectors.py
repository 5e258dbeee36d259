"""Which modules a `targets=` / `exclude=` selector picks: classes, names, path regexes, callables.

The default selector is "every normalisation layer" (see `norms.is_normalization`); the
outermost match wins, so a conditional norm that wraps a BatchNorm is one site, not two.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence

from torch import nn

from gan_adapters.errors import ConfigError, SiteError
from gan_adapters.surgery.norms import NORM_CLASSES, NORM_FUNCTIONS, is_normalization
from gan_adapters.surgery.slots import AdapterSlot, is_adapter_key
from gan_adapters.surgery.tracing import join_path

Target = str | type | Callable[[str, nn.Module], bool]
"""A site selector: a class, a class name or path regex, or a callable (path, module) -> bool."""


def describe_search(targets: Sequence[Target] | None) -> str:
    """Human words for what a search looked for (used in errors)."""
    if targets is None:
        known = ", ".join(sorted(NORM_CLASSES))
        return (
            "BatchNorm/InstanceNorm modules, registered normalisation classes "
            f"({known}), modules that call {'/'.join(NORM_FUNCTIONS)}, and inline "
            f"{'/'.join(NORM_FUNCTIONS)} calls"
        )
    return "modules matching targets=" + repr(
        [t if isinstance(t, str) else getattr(t, "__name__", t) for t in targets]
    )


def _compile_target(target: Target) -> Callable[[str, nn.Module], bool]:
    if isinstance(target, type):
        return lambda path, module: isinstance(module, target)
    if isinstance(target, str):
        try:
            pattern = re.compile(target)
        except re.error as exc:
            raise ConfigError(f"target {target!r} is not a class name nor a valid regex: {exc}") from exc

        def matches(path: str, module: nn.Module) -> bool:
            names = {c.__name__ for c in type(module).__mro__} - {"Module", "object"}
            parts = path.split(".")
            # A path regex matches the whole path or any dotted suffix of it, so a pattern written
            # for the bare generator still matches once the generator is wrapped in another module.
            return target in names or any(
                pattern.fullmatch(".".join(parts[i:])) is not None for i in range(len(parts))
            )

        return matches
    if callable(target):
        return target
    raise ConfigError(f"targets entries must be classes, strings or callables, got {target!r}")


def as_list(selector: Sequence[Target] | Target | None) -> list[Target] | None:
    """A `targets=` / `exclude=` value as a list (None stays None)."""
    if selector is None:
        return None
    if isinstance(selector, Sequence) and not isinstance(selector, str):
        return list(selector)
    return [selector]


def make_matcher(targets: Sequence[Target] | Target | None) -> Callable[[str, nn.Module], bool]:
    """Turn a `targets=` / `exclude=` value into one predicate over (path, module)."""
    if targets is None:
        return lambda path, module: is_normalization(module)
    predicates = [_compile_target(t) for t in as_list(targets)]
    return lambda path, module: any(p(path, module) for p in predicates)


def check_every_entry_matches(model: nn.Module, selector: Sequence[Target] | None, option: str) -> None:
    """Refuse a `targets=` / `exclude=` entry that matches no module, naming the nearest paths
    and classes (a typo would otherwise adapt what was meant to be skipped, or nothing)."""
    modules = [(p, m) for p, m in model.named_modules() if p and not is_adapter_key(p)]
    for entry in selector or []:
        predicate = _compile_target(entry)
        if any(predicate(path, module) for path, module in modules):
            continue
        names = [p for p, _ in modules] + sorted({type(m).__name__ for _, m in modules})
        nearest = difflib.get_close_matches(str(getattr(entry, "__name__", entry)), names, n=5, cutoff=0.3)
        raise SiteError(
            f"{option} entry {getattr(entry, '__name__', entry)!r} matches no module of "
            f"{type(model).__name__}; nearest paths and classes: {', '.join(nearest) or 'none'}"
        )


def match_modules(
    model: nn.Module, targets: Sequence[Target] | None, exclude: Sequence[Target] | None
) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """Matching modules by path, outermost first (a match's descendants are never matched),
    and the excluded subtrees (nothing inside them is a site)."""
    is_target = make_matcher(targets)
    is_excluded = make_matcher(exclude) if exclude else (lambda path, module: False)
    found: dict[str, nn.Module] = {}
    excluded: dict[str, nn.Module] = {}
    seen: set[int] = set()

    def walk(path: str, module: nn.Module) -> None:
        if id(module) in seen or isinstance(module, AdapterSlot):
            return
        seen.add(id(module))
        if path and is_excluded(path, module):
            excluded[path] = module
        elif path and is_target(path, module):
            found[path] = module
        else:
            for name, child in module.named_children():
                walk(join_path(path, name), child)

    walk("", model)
    return found, excluded
