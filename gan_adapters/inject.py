"""`inject`: put identity-initialised adapters at every site of a generator and freeze the rest.

Module sites are adapted in place (a hook and a `gan_adapters` child), so the user's
object keeps its class, methods, attributes and state_dict keys. Only call sites rewrite
a forward: the owning module becomes a torch.fx GraphModule in its parent (the returned
model is a GraphModule only when the root's own forward had to be rewritten).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from gan_adapters.config import AdapterConfig
from gan_adapters.errors import AdapterStateError, SiteError
from gan_adapters.kinds import ADAPTER_KINDS, Adapter
from gan_adapters.sites import Discovery, Site, Target, as_list, find_norm_sites, make_matcher
from gan_adapters.slots import AdapterSlot, attach_slot, is_adapter_key, module_slot
from gan_adapters.tracing import norm_function_name, trace_owner

log = logging.getLogger(__name__)

STATE_ATTRIBUTE = "_gan_adapters_state"
ORIGINAL_ATTRIBUTE = "_gan_adapters_original"


@dataclass
class AdapterRecord:
    """One named adapter: its config and the sites it was built for."""

    config: AdapterConfig
    discovery: Discovery

    @property
    def sites(self) -> list[Site]:
        """The sites, in model order."""
        return self.discovery.sites


@dataclass
class InjectionState:
    """What `inject` did to a model, kept on the model so every later call can undo it."""

    adapters: dict[str, AdapterRecord] = field(default_factory=dict)
    active: str | None = None
    original_requires_grad: dict[str, bool] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)
    """Paths of owners whose forward became a GraphModule ('' = the root)."""


def injection_state(model: nn.Module) -> InjectionState | None:
    """The injection state of a model, or None if it has no adapters."""
    return model.__dict__.get(STATE_ATTRIBUTE)


def require_state(model: nn.Module) -> InjectionState:
    """The injection state, or a clear error when the model has no adapters."""
    state = injection_state(model)
    if state is None or not state.adapters:
        raise AdapterStateError(
            f"{type(model).__name__} has no adapters: call gan_adapters.inject(model, ...) first"
            " (or use the model that inject returned)"
        )
    return state


def slots_of(model: nn.Module) -> list[AdapterSlot]:
    """Every adapter slot in the model."""
    return [m for m in model.modules() if isinstance(m, AdapterSlot)]


def _ignore_missing_adapter_keys(module: nn.Module, incompatible) -> None:
    """load_state_dict post-hook: an original checkpoint lacks adapter keys, and that is fine."""
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not is_adapter_key(k)]


def _serialisable(selector, resolved_paths: list[str]) -> list[str] | None:
    """A selector as strings: classes by name; callables replaced by the paths they chose."""
    items = as_list(selector)
    if items is None:
        return None
    if all(isinstance(t, (str, type)) for t in items):
        return [t if isinstance(t, str) else t.__name__ for t in items]
    return [re.escape(path) for path in resolved_paths]


def _check_new_name(model: nn.Module, name: str) -> None:
    state = injection_state(model)
    if state is not None and name in state.adapters:
        raise AdapterStateError(
            f"the model already has an adapter named {name!r}; pass another "
            "adapter_name=, or delete_adapter(model, name) first"
        )


def _ensure_load_hook(root: nn.Module) -> None:
    if _ignore_missing_adapter_keys not in root._load_state_dict_post_hooks.values():
        root.register_load_state_dict_post_hook(_ignore_missing_adapter_keys)


def inject(
    model: nn.Module,
    kind: str = "apgc",
    *,
    groups: int | None = None,
    group_size: int | None = None,
    ratio: float | None = None,
    targets: Sequence[Target] | Target | None = None,
    exclude: Sequence[Target] | Target | None = None,
    bias: bool = False,
    conditional: bool = False,
    train_norm: bool = False,
    num_classes: int = 1,
    method: str = "auto",
    adapter_name: str = "default",
    example_inputs: tuple | None = None,
    example_kwargs: dict | None = None,
    config: AdapterConfig | None = None,
) -> nn.Module:
    """Insert identity-initialised adapters after every normalisation layer; freeze the rest.

    Modifies `model` in place and returns it, so `inject(model, kind="apgc", groups=8)` is
    the whole call. Size `apgc` by exactly one of `groups` (groups per layer), `group_size`
    (channels per group) or `ratio` (parameters against `ssa`). `targets`/`exclude` select
    layers (classes, class names, path regexes, or a callable(path, module)). Where a forward
    must be rewritten and that forward is the root's, the returned model is a GraphModule
    (a warning says so): always use the return value.
    """
    if config is None:
        config = AdapterConfig(
            kind=kind, groups=groups, group_size=group_size, ratio=ratio, bias=bias,
            conditional=conditional, train_norm=train_norm, num_classes=num_classes, method=method,
        )  # fmt: skip
        raw_targets, raw_exclude = targets, exclude
    else:
        config = dataclasses.replace(config)
        raw_targets, raw_exclude = config.targets, config.exclude
    _check_new_name(model, adapter_name)
    discovery = find_norm_sites(
        model, raw_targets, raw_exclude, method=config.method,
        example_inputs=example_inputs, example_kwargs=example_kwargs,
    )  # fmt: skip
    config.targets = _serialisable(raw_targets, discovery.matched_paths)
    if raw_exclude:
        excluded = make_matcher(raw_exclude)
        config.exclude = _serialisable(raw_exclude, [p for p, m in model.named_modules() if excluded(p, m)])
    return insert_adapters(model, config, discovery, adapter_name)


def insert_adapters(
    model: nn.Module, config: AdapterConfig, discovery: Discovery, adapter_name: str
) -> nn.Module:
    """Build `config`'s adapters at the discovered sites, activate them, freeze the rest."""
    _check_new_name(model, adapter_name)
    state = injection_state(model) or InjectionState()
    adapters = {site.id: build_adapter(config, site) for site in discovery.sites}
    root = _place_adapters(model, discovery.sites, adapters, adapter_name)
    if not state.adapters:
        state.original_requires_grad = {n: p.requires_grad for n, p in root.named_parameters()}
    _ensure_load_hook(root)
    state.adapters[adapter_name] = AdapterRecord(config, discovery)
    state.rewritten = sorted(set(state.rewritten) | {s.call.owner for s in discovery.sites if s.call})
    root.__dict__[STATE_ATTRIBUTE] = state
    activate(root, adapter_name)
    for note in discovery.notes:
        log.info("gan_adapters: %s", note)
    for warning in discovery.warnings:
        log.warning("gan_adapters: %s", warning)
    return root


def build_adapter(config: AdapterConfig, site: Site) -> Adapter:
    """The adapter `config` asks for at one site (sizes are checked against its channels)."""
    group_size = config.group_size_for(site.channels, site.id)
    conditional = config.conditional and site.condition_features is not None
    return ADAPTER_KINDS[config.kind](
        site.channels,
        group_size=group_size,
        bias=config.bias,
        num_classes=config.num_classes,
        condition_features=site.condition_features if conditional else None,
        condition_is_label=conditional and site.condition_is_label,
    )


def _reference_tensor(module: nn.Module) -> torch.Tensor | None:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def _place_adapters(root: nn.Module, sites: list[Site], adapters: dict[str, Adapter], name: str) -> nn.Module:
    """Put each site's adapter into its slot, creating slots (and rewriting owners) as needed."""
    fallback = _reference_tensor(root)
    by_owner: dict[str, list[Site]] = {}
    for site in sites:
        host = root.get_submodule(site.module_path if site.module_path is not None else site.call.owner)
        own = _reference_tensor(host)
        ref = own if own is not None else fallback
        if ref is not None:
            adapters[site.id].to(device=ref.device, dtype=ref.dtype)
        if site.call is None:
            slot = module_slot(host)
            if slot is None:
                slot = AdapterSlot(site.id, site.condition)
                attach_slot(host, slot)
            slot[name] = adapters[site.id]
        else:
            by_owner.setdefault(site.call.owner, []).append(site)
    for owner, owner_sites in sorted(by_owner.items(), key=lambda item: path_depth(item[0])):
        root = _rewrite_owner(root, owner, owner_sites, adapters, name)
    return root


def path_depth(path: str) -> int:
    """Depth of a module path (the root '' is 0)."""
    return path.count(".") + 1 if path else 0


def graph_slot_name(site: Site) -> str:
    """Attribute name of a call site's slot on its (rewritten) owner."""
    return f"gan_adapters_{site.call.target.replace('.', '_')}_{site.call.index}"


def _as_graph_module(owner: nn.Module) -> fx.GraphModule:
    """The owner's forward as a GraphModule that keeps every child, parameter and buffer."""
    if isinstance(owner, fx.GraphModule) and ORIGINAL_ATTRIBUTE in owner.__dict__:
        return owner
    graph = trace_owner(owner, lambda m: True)
    gm = fx.GraphModule(owner, graph, class_name=type(owner).__name__)
    # GraphModule keeps only what forward touches; keep the rest so state_dict keys survive.
    for child_name, child in owner._modules.items():
        gm._modules[child_name] = child
    for param_name, param in owner._parameters.items():
        gm._parameters[param_name] = param
    for buffer_name, buffer in owner._buffers.items():
        gm.register_buffer(
            buffer_name, buffer, persistent=buffer_name not in owner._non_persistent_buffers_set
        )
    gm.train(owner.training)
    gm.__dict__[ORIGINAL_ATTRIBUTE] = owner
    return gm


def _find_call_node(gm: fx.GraphModule, site: Site) -> fx.Node:
    seen = 0
    for node in gm.graph.nodes:
        hit = (
            (node.op == "call_function" and norm_function_name(node.target) == site.call.target)
            if site.call.functional
            else (node.op == "call_module" and node.target == site.call.target)
        )
        if hit:
            if seen == site.call.index:
                return node
            seen += 1
    raise SiteError(
        f"call site {site.id!r} was seen while scanning but not when tracing "
        f"{site.call.owner or '<root>'} on its own; exclude it with exclude="
    )


def _rewrite_owner(root: nn.Module, owner_path: str, sites: list[Site], adapters, name: str) -> nn.Module:
    owner = root.get_submodule(owner_path)
    gm = _as_graph_module(owner)
    for site in sites:
        slot_name = graph_slot_name(site)
        slot = gm._modules.get(slot_name)
        if slot is None:
            node = _find_call_node(gm, site)
            slot = AdapterSlot(site.id, site.condition)
            gm.add_module(slot_name, slot)
            args = (node,) if site.call.functional else (node, tuple(node.args), dict(node.kwargs))
            with gm.graph.inserting_after(node):
                adapted = gm.graph.call_module(slot_name, args)
            node.replace_all_uses_with(adapted, delete_user_cb=lambda user, new=adapted: user is not new)
        slot[name] = adapters[site.id]
    gm.recompile()
    if gm is owner:
        return root
    if not owner_path:
        log.warning(
            "gan_adapters: the forward of %s itself holds a call site, so the returned model "
            "is a torch.fx GraphModule (same parameters and keys): use inject's return value",
            type(owner).__name__,
        )
        return gm
    parent_path, _, attr = owner_path.rpartition(".")
    setattr(root.get_submodule(parent_path), attr, gm)
    return root


def _site_modules(root: nn.Module, record: AdapterRecord) -> list[nn.Module]:
    return [root.get_submodule(s.module_path) for s in record.sites if s.module_path is not None]


def activate(model: nn.Module, name: str) -> None:
    """Make `name` the adapter every site applies, and the only trainable one."""
    state = require_state(model)
    if name not in state.adapters:
        raise AdapterStateError(f"no adapter named {name!r}; this model has: {', '.join(state.adapters)}")
    state.active = name
    for slot in slots_of(model):
        slot.active = name if name in slot else None
    model.requires_grad_(False)
    for slot in slots_of(model):
        if name in slot:
            slot[name].requires_grad_(True)
    record = state.adapters[name]
    if record.config.train_norm:
        for module in _site_modules(model, record):
            for child in module.children():
                if not isinstance(child, AdapterSlot):
                    child.requires_grad_(True)
            for param in module._parameters.values():
                if param is not None:
                    param.requires_grad_(True)
