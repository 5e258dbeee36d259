"""Several domains on one base: blend named adapters into a new one, or give each sample its own.

Every adapter kind is the identity plus an offset (`Adapter.offset`): a scale/shift's is
(s - 1, t), a point-wise adapter's is its delta and bias. A blend adds the weighted offsets of
its parents to the identity, so `{A: 1, B: 0}` is A, `{A: 0.5, B: 0.5}` is halfway between
them, `{A: 0.5}` alone is half of A's change from the base, and `{A: 1.5, B: -0.5}` extrapolates.
Kinds mix where one holds the other exactly: a scale/shift is a diagonal point-wise delta plus a
bias, a group of 4 channels sits inside a group of 8, a single scale/shift is every class's row
of a per-class table. Conditional parts (the FC from the layer's condition) blend linearly too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError, ConfigError, MismatchError
from gan_adapters.surgery.base import Adapter
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.inject import build_adapter, check_adapter_name, insert_adapters
from gan_adapters.surgery.state import AdapterRecord, require_state, slots_of


def _shape(adapter: Adapter) -> tuple[int, int]:
    """(classes, channels per group) of an adapter's offset."""
    return getattr(adapter, "num_classes", 1), adapter.group_size or 1


def _regroup(delta: torch.Tensor, size: int) -> torch.Tensor:
    """A block-diagonal offset (K, C, g) as the same matrix in blocks of `size` (a multiple of g):
    row i's entry j multiplies channel (i // g) * g + j, which is column (i % size) - (i % g) + j."""
    classes, channels, g = delta.shape
    if g == size:
        return delta
    rows = torch.arange(channels)
    columns = (rows % size - rows % g)[:, None] + torch.arange(g)[None, :]
    out = delta.new_zeros(classes, channels, size)
    out[:, rows[:, None].expand(-1, g), columns] = delta
    return out


def _why_not_held(target: Adapter, parent: Adapter) -> str | None:
    (classes, size), (parent_classes, parent_size) = _shape(target), _shape(parent)
    if parent_classes not in (1, classes):
        return (
            f"its {parent_classes} per-class tables have no place in a {target.kind!r} adapter of {classes}"
        )
    if size % parent_size:
        return f"its groups of {parent_size} channels do not fit in groups of {size}"
    if parent.conditional and not target.conditional:
        return "it reads the layer's condition and the blend would not"
    return None


def _target_record(records: dict[str, AdapterRecord], model: nn.Module) -> AdapterRecord:
    """The parent whose kind may hold all the others: the one with the largest offset."""
    sizes = {
        name: sum(slot[name].offset()[0].numel() for slot in slots_of(model) if name in slot)
        for name in records
    }
    return records[max(records, key=lambda name: sizes[name])]


def _check_sites(records: dict[str, AdapterRecord]) -> None:
    names = list(records)
    first = [site.fingerprint() for site in records[names[0]].sites]
    for name in names[1:]:
        other = [site.fingerprint() for site in records[name].sites]
        if other != first:
            diff = next((f"{a} vs {b}" for a, b in zip(first, other, strict=False) if a != b), "site counts")
            raise MismatchError(
                f"adapters {names[0]!r} and {name!r} sit at different sites ({diff}): only adapters "
                "injected at the same sites of one base blend"
            )


def _blended(target: Adapter, parents: list[tuple[str, Adapter]], weights: dict[str, float]) -> Adapter:
    classes, size = _shape(target)
    delta = torch.zeros(classes, target.channels, size, dtype=torch.float64)
    bias = torch.zeros(classes, target.channels, dtype=torch.float64)
    condition = {
        k: torch.zeros_like(v, dtype=torch.float64)
        for k, v in target.state_dict().items()
        if k.startswith("condition_fc.")
    }
    for name, parent in parents:
        why = _why_not_held(target, parent)
        if why is not None:
            raise ConfigError(f"cannot blend {name!r} ({parent.kind}) into a {target.kind!r} adapter: {why}")
        parent_delta, parent_bias = (t.detach().double().cpu() for t in parent.offset())
        delta += weights[name] * _regroup(parent_delta, size)
        bias += weights[name] * parent_bias
        for key, value in parent.state_dict().items():
            if key in condition:
                condition[key] += weights[name] * value.double().cpu()
    reference = next(target.parameters())
    target.set_offset(delta.to(reference), bias.to(reference))
    with torch.no_grad():
        for key, value in condition.items():
            target.get_parameter(key).copy_(value)
    return target


def blend(model: nn.Module, weights: dict[str, float], name: str = "blend") -> nn.Module:
    """Add adapter `name` whose offset from the identity is the weighted sum of the named adapters'
    (see the module docstring), and make it active. It saves and loads like any adapter; its
    config records its parents and weights (`blended_from`). Refused, with the model unchanged,
    for unknown names, adapters at other sites, or kinds that cannot hold one another."""
    state = require_state(model)
    if not isinstance(weights, Mapping):
        raise ConfigError(
            f"blend() takes weights as {{name: weight}}, e.g. {{'faces': 0.5, 'animals': 0.5}}; "
            f"got a {type(weights).__name__}"
        )
    if not weights:
        raise ConfigError("blend() needs at least one adapter name and its weight")
    records = {parent: state.record(parent) for parent in weights}
    bad = {k: v for k, v in weights.items() if not isinstance(v, int | float) or not math.isfinite(v)}
    if bad:
        raise ConfigError(f"blend weights must be finite numbers, got {bad}")
    check_adapter_name(model, name)
    _check_sites(records)
    base = _target_record(records, model)
    # A point-wise blend needs a bias where any parent shifts (a scale/shift always may).
    shifts = any(_shifts(r.config) for r in records.values())
    config = dataclasses.replace(
        base.config,
        **({"bias": True} if base.config.adapter_class.pointwise and shifts else {}),
        conditional=any(r.config.conditional for r in records.values()),
        blended_from={k: float(v) for k, v in weights.items()},
    )
    adapters = {}
    for slot in slots_of(model):
        parents = [(parent, slot[parent]) for parent in weights if parent in slot]
        if parents:
            site = next(s for s in base.sites if s.id == slot.site_id)
            adapters[site.id] = _blended(build_adapter(config, site), parents, weights)
    return insert_adapters(model, config, base.discovery, name, adapters=adapters)


def _shifts(config: AdapterConfig) -> bool:
    """Whether adapters of `config` may hold a shift (a scale/shift always; a point-wise kind with a bias)."""
    return not config.adapter_class.pointwise or getattr(config.settings, "bias", False)


@contextmanager
def adapters_per_sample(model: nn.Module, names: Sequence[str | None]) -> Iterator[nn.Module]:
    """Inside the block, sample i of a batch runs through adapter `names[i]` (None: the base alone),
    in one forward: equal to forwards with each adapter active, row by row (the norm's folds are
    skipped: each adapter runs after its norm). Compiles as one graph; no loop over samples."""
    state = require_state(model)
    unknown = [n for n in names if n is not None and n not in state.adapters]
    if unknown:
        raise AdapterStateError(
            f"no adapter named {unknown[0]!r}; this model has: {', '.join(state.adapters)} "
            "(or None for the base)"
        )
    distinct = tuple(dict.fromkeys(names))
    slots = slots_of(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    index = torch.tensor([distinct.index(n) for n in names], device=device)
    for slot in slots:
        slot.per_sample = (distinct, index)
    try:
        yield model
    finally:
        for slot in slots:
            slot.per_sample = None
