"""What `inject` did to a model, kept on the model itself, and which adapter is active.

The state lives in an attribute of the model (never in a global), so every later call
(`set_adapter`, `save_adapters`, `summary`, `unload`) needs nothing but the model, and two
models never interfere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from gan_adapters.errors import AdapterStateError, UnknownAdapterError
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.sites import Discovery, Site
from gan_adapters.surgery.slots import AdapterSlot, is_adapter_key

STATE_ATTRIBUTE = "_gan_adapters_state"


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

    def record(self, name: str | None) -> AdapterRecord:
        """The record of adapter `name` (the active one for None), or UnknownAdapterError."""
        name = self.active if name is None else name
        if name not in self.adapters:
            raise UnknownAdapterError(name, list(self.adapters))
        return self.adapters[name]


def injection_state(model: nn.Module) -> InjectionState | None:
    """The injection state of a model, or None if it has no adapters."""
    return model.__dict__.get(STATE_ATTRIBUTE)


def has_adapters(model: nn.Module) -> bool:
    """Whether `inject` has put adapters into this model."""
    return injection_state(model) is not None


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


def ignore_missing_adapter_keys(module: nn.Module, incompatible) -> None:
    """load_state_dict post-hook: an original checkpoint lacks adapter keys, and that is fine."""
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not is_adapter_key(k)]


def ensure_load_hook(root: nn.Module) -> None:
    """Let the original checkpoint load strictly into the injected model."""
    if ignore_missing_adapter_keys not in root._load_state_dict_post_hooks.values():
        root.register_load_state_dict_post_hook(ignore_missing_adapter_keys)


def remove_load_hook(root: nn.Module) -> None:
    """Undo `ensure_load_hook`."""
    hooks = root._load_state_dict_post_hooks
    for hook_id in [k for k, hook in hooks.items() if hook is ignore_missing_adapter_keys]:
        del hooks[hook_id]


def activate(model: nn.Module, name: str) -> None:
    """Make `name` the adapter every site applies, and the only trainable one."""
    state = require_state(model)
    record = state.record(name)
    state.active = name
    slots = slots_of(model)
    for slot in slots:
        slot.active = name if name in slot else None
    model.requires_grad_(False)
    for slot in slots:
        if name in slot:
            slot[name].requires_grad_(True)
    if record.config.train_norm:
        for site in record.sites:
            if site.module_path is None:
                continue
            module = model.get_submodule(site.module_path)
            for child in module.children():
                if not isinstance(child, AdapterSlot):
                    child.requires_grad_(True)
            for param in module._parameters.values():
                if param is not None:
                    param.requires_grad_(True)
