"""`inject`: put identity-initialised adapters at every site of a generator and freeze the rest.

Module sites are adapted in place (a hook and a `gan_adapters` child), so the user's
object keeps its class, methods, attributes and state_dict keys. Only call sites rewrite
a forward: the owning module becomes a torch.fx GraphModule in its parent (the returned
model is a GraphModule only when the root's own forward had to be rewritten).

Everything that can fail (the name, every site's size, every graph to rewrite) is checked
before the first change, so a refused call leaves the model exactly as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError, ConfigError
from gan_adapters.surgery.base import Adapter
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.hooks import attach_slot
from gan_adapters.surgery.rewrite import path_depth, prepare_owner, rewrite_owner
from gan_adapters.surgery.selectors import Target, as_list, make_matcher
from gan_adapters.surgery.sites import Discovery, Site, find_norm_sites
from gan_adapters.surgery.slots import AdapterSlot, module_slot
from gan_adapters.surgery.state import (
    STATE_ATTRIBUTE,
    AdapterRecord,
    InjectionState,
    activate,
    ensure_load_hook,
    injection_state,
)

log = logging.getLogger(__name__)


def check_adapter_name(model: nn.Module, name: object) -> None:
    """Refuse a name that is empty, dotted, clashes with a slot attribute, or is taken."""
    if not isinstance(name, str) or not name or "." in name or name.startswith("_"):
        raise ConfigError(
            f"adapter name {name!r} is not usable: give a non-empty string without dots that "
            "does not start with '_' (for example 'default' or 'emoji-faces')"
        )
    if hasattr(AdapterSlot, name) or name in AdapterSlot("").__dict__:
        raise ConfigError(
            f"adapter name {name!r} is reserved (an attribute of the adapter slot); pick another"
        )
    state = injection_state(model)
    if state is not None and name in state.adapters:
        raise AdapterStateError(
            f"the model already has an adapter named {name!r}; pass another "
            "adapter_name=, or delete_adapter(model, name) first"
        )


def _serialisable(selector, resolved_paths: list[str]) -> list[str] | None:
    """A selector as strings: classes by name; callables replaced by the paths they chose."""
    items = as_list(selector)
    if items is None:
        return None
    if all(isinstance(t, (str, type)) for t in items):
        return [t if isinstance(t, str) else t.__name__ for t in items]
    return [re.escape(path) for path in resolved_paths]


def inject(
    model: nn.Module,
    kind: str = "apgc",
    *,
    targets: Sequence[Target] | Target | None = None,
    exclude: Sequence[Target] | Target | None = None,
    adapter_name: str = "default",
    example_inputs: tuple | None = None,
    example_kwargs: dict | None = None,
    config: AdapterConfig | None = None,
    **settings: Any,
) -> nn.Module:
    """Insert identity-initialised adapters after every normalisation layer; freeze the rest.

    Modifies `model` in place and returns it, so `inject(model, kind="apgc", groups=8)` is
    the whole call. `settings` are `AdapterConfig`'s fields and the kind's own settings: size
    `apgc` by exactly one of `groups` (groups per layer), `group_size` (channels per group) or
    `ratio` (parameters against `ssa`); `bias` (apc, apgc), `num_classes` (cbn); `conditional`,
    `train_norm`; `route` picks how sites are found
    (auto, fx, export, module); `fold` and `pointwise_impl` how adapters run after an eval-mode
    BatchNorm; `widths` gives the channel count of targeted layers that state none ({class name or
    path regex: C}). `targets`/`exclude` select layers (classes, class names, path regexes, or a
    callable(path, module)); `config` gives all of it at once instead. Where a forward must be
    rewritten and that forward is the root's, the returned model is a GraphModule (a warning says
    so): always use the return value. A refused call leaves `model` as it was.
    """
    if config is None:
        config = AdapterConfig.from_dict({"kind": kind} | settings)
        raw_targets, raw_exclude = targets, exclude
    else:
        config = dataclasses.replace(config)
        raw_targets, raw_exclude = config.targets, config.exclude
    check_adapter_name(model, adapter_name)
    discovery = find_norm_sites(
        model,
        raw_targets,
        raw_exclude,
        route=config.route,
        example_inputs=example_inputs,
        example_kwargs=example_kwargs,
        widths=config.widths,
    )
    config.targets = _serialisable(raw_targets, discovery.matched_paths)
    if raw_exclude:
        excluded = make_matcher(raw_exclude)
        config.exclude = _serialisable(raw_exclude, [p for p, m in model.named_modules() if excluded(p, m)])
    return insert_adapters(model, config, discovery, adapter_name)


def insert_adapters(
    model: nn.Module,
    config: AdapterConfig,
    discovery: Discovery,
    adapter_name: str,
    adapters: dict[str, Adapter] | None = None,
) -> nn.Module:
    """Put `config`'s adapters (built here unless given, by site id) at the discovered sites,
    activate them, freeze the rest. Validates everything first, then changes the model."""
    check_adapter_name(model, adapter_name)
    if adapters is None:
        adapters = {site.id: build_adapter(config, site) for site in discovery.sites}
    by_owner: dict[str, list[Site]] = {}
    for site in discovery.sites:
        if site.call is not None:
            by_owner.setdefault(site.call.owner, []).append(site)
    owners = sorted(by_owner, key=path_depth)
    graphs = {owner: prepare_owner(model, owner, by_owner[owner]) for owner in owners}
    # Nothing above changed the model; nothing below fails on user input.
    state = injection_state(model) or InjectionState()
    if not state.adapters:
        state.original_requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    root = model
    fallback = _reference_tensor(model)
    for site in discovery.sites:
        host = model.get_submodule(site.module_path if site.call is None else site.call.owner)
        own = _reference_tensor(host)
        _match_device(adapters[site.id], own if own is not None else fallback)
        if site.call is None:
            slot = module_slot(host)
            if slot is None:
                slot = AdapterSlot(site.id, site.condition)
                attach_slot(host, slot)
            slot[adapter_name] = adapters[site.id]
    for owner in owners:
        root = rewrite_owner(root, owner, graphs[owner], by_owner[owner], adapters, adapter_name)
    ensure_load_hook(root)
    state.adapters[adapter_name] = AdapterRecord(config, discovery)
    state.rewritten = sorted(set(state.rewritten) | set(owners))
    root.__dict__[STATE_ATTRIBUTE] = state
    activate(root, adapter_name)
    for note in discovery.notes:
        log.info("gan_adapters: %s", note)
    for warning in discovery.warnings:
        log.warning("gan_adapters: %s", warning)
    return root


def build_adapter(config: AdapterConfig, site: Site) -> Adapter:
    """The adapter `config` asks for at one site (sizes are checked against its channels)."""
    conditional = config.conditional and site.condition_features is not None
    adapter = config.adapter_class(
        site.channels,
        **config.settings.arguments(site.channels, site.id),
        condition_features=site.condition_features if conditional else None,
        condition_is_label=conditional and site.condition_is_label,
    )
    adapter.fold, adapter.pointwise_impl = config.fold, config.pointwise_impl
    return adapter


def _reference_tensor(module: nn.Module) -> torch.Tensor | None:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def _match_device(adapter: Adapter, reference: torch.Tensor | None) -> None:
    if reference is not None:
        adapter.to(device=reference.device, dtype=reference.dtype)
