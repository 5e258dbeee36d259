"""`AdapterSlot`: the named adapters at one site, and the forward hook that applies them.

A module site keeps its own class and state_dict keys: its slot is attached as the child
`gan_adapters` and applied by a forward hook. A call site (a functional batch_norm, or one
call of a module called at several sites) gets its slot as a node in its owner's graph.
Either way the slot receives the site's output and call arguments, so a conditional
adapter can read the layer's condition.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.errors import AdapterStateError
from gan_adapters.surgery.adapters import Adapter

SLOT_ATTRIBUTE = "gan_adapters"
"""Child name of a module site's slot; every adapter state_dict key has a part starting so."""


class AdapterSlot(nn.ModuleDict):
    """The adapters at one site, keyed by adapter name; applies the active one."""

    def __init__(self, site_id: str, condition: tuple[str, int] | None = None) -> None:
        super().__init__()
        self.site_id = site_id
        self.condition_name, self.condition_position = condition or (None, None)
        self.active: str | None = None
        self.enabled = True

    def _condition(self, args: tuple, kwargs: dict | None) -> torch.Tensor | None:
        if self.condition_name is None:
            return None
        if kwargs and self.condition_name in kwargs:
            return kwargs[self.condition_name]
        position = self.condition_position
        return args[position] if 0 <= position < len(args) else None

    def forward(self, output: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if not self.enabled or self.active is None or self.active not in self:
            return output
        if not isinstance(output, torch.Tensor):
            raise AdapterStateError(
                f"site {self.site_id!r} returned {type(output).__name__}, not a tensor: "
                "adapters need a layer whose output is one (N, C, ...) tensor"
            )
        adapter: Adapter = self[self.active]
        condition = self._condition(args, kwargs) if adapter.conditional else None
        return adapter(output, condition)

    def extra_repr(self) -> str:
        return f"site={self.site_id!r}, active={self.active!r}, enabled={self.enabled}"


def norm_fold(module: nn.Module, slot: AdapterSlot | None, input: torch.Tensor) -> tuple[Adapter, str] | None:
    """(active adapter, how) when, for this call, the adapter runs folded into a BatchNorm: the norm
    is in eval mode with running statistics and the adapter's `norm_fold` says how (or None)."""
    if slot is None or not slot.enabled or slot.active is None or slot.active not in slot:
        return None
    if module.training or module.running_mean is None:
        return None
    adapter: Adapter = slot[slot.active]
    how = adapter.norm_fold(input)
    return None if how is None else (adapter, how)


def eval_affine(norm: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with norm(x) = x * scale + shift for an eval-mode BatchNorm, per channel."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    return scale, shift if norm.bias is None else shift + norm.bias


def folded_norm_forward(self: nn.modules.batchnorm._BatchNorm, input: torch.Tensor) -> torch.Tensor:
    """A BatchNorm site's forward with its adapter folded in. A scale/shift goes into the norm's
    affine: one batch_norm call with weight w * s and bias b * s + t (exactly w and b at init). A
    point-wise adapter takes the norm's affine into its blocks: one grouped 1x1 with a bias."""
    plan = norm_fold(self, self._modules.get(SLOT_ATTRIBUTE), input)
    if plan is None:
        return type(self).forward(self, input)
    adapter, how = plan
    if how != "affine":
        return adapter.after_affine(input, *eval_affine(self), how)
    scale, shift = adapter.affine_terms()
    weight = scale if self.weight is None else self.weight * scale
    bias = shift if self.bias is None else torch.addcmul(shift, self.bias, scale)
    return F.batch_norm(input, self.running_mean, self.running_var, weight, bias, False, 0.0, self.eps)


def apply_slot_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook of a module site: hand the output (and call arguments) to its slot, unless
    the adapter was folded into the module's own computation."""
    slot = module_slot(module)
    if slot is None:
        return output
    input = args[0] if args else kwargs.get("input")
    if _folds(module) and norm_fold(module, slot, input) is not None:
        return output
    return slot(output, args, kwargs)


def _folds(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def attach_slot(module: nn.Module, slot: AdapterSlot) -> None:
    """Make `slot` a child of a module site and hook it onto the module's output (a BatchNorm
    site also gets the folding forward, as an attribute of this one instance)."""
    module.add_module(SLOT_ATTRIBUTE, slot)
    module.register_forward_hook(apply_slot_hook, with_kwargs=True)
    if _folds(module):
        module.forward = types.MethodType(folded_norm_forward, module)


def detach_slot(module: nn.Module) -> None:
    """Undo `attach_slot`: the module is again exactly what it was."""
    del module._modules[SLOT_ATTRIBUTE]
    forward = module.__dict__.get("forward")
    if getattr(forward, "__func__", None) is folded_norm_forward:
        del module.__dict__["forward"]
    for hook_id, hook in list(module._forward_hooks.items()):
        if hook is apply_slot_hook:
            del module._forward_hooks[hook_id]
            module._forward_hooks_with_kwargs.pop(hook_id, None)


def module_slot(module: nn.Module) -> AdapterSlot | None:
    """The slot attached to a module site, if any."""
    slot = module._modules.get(SLOT_ATTRIBUTE)
    return slot if isinstance(slot, AdapterSlot) else None


def is_adapter_key(key: str) -> bool:
    """Whether a state_dict key belongs to an adapter (module or graph slot)."""
    return any(part.startswith(SLOT_ATTRIBUTE) for part in key.split("."))
