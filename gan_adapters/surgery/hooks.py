"""How a module site runs its slot: a forward hook, or a norm site's own forward that folds it in.

A BatchNorm site in eval mode can run its adapter inside its own computation (`fold`): a
scale/shift goes into the norm's affine, the norm's affine into a point-wise adapter. A
class-conditional norm that says how it is built (`conditional_affine`, below) takes a scale/shift
into its per-sample gain and bias. Such sites run their slot from that forward; every other
module site runs it from a forward hook.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.surgery.base import Adapter
from gan_adapters.surgery.slots import SLOT_ATTRIBUTE, AdapterSlot, module_slot

_BatchNorm = nn.modules.batchnorm._BatchNorm


def is_conditional_norm(module: nn.Module) -> bool:
    """Whether a norm says how it is built: an affine-free BatchNorm `module.norm` and a method
    `conditional_affine(*args, **kwargs) -> (gain, bias)`, each (N, C), such that its forward(x,
    *args, **kwargs) is norm(x) * gain + bias (BigGAN's class-conditional BN; opt in by both)."""
    return callable(getattr(module, "conditional_affine", None)) and isinstance(
        getattr(module, "norm", None), _BatchNorm
    )


def runs_torch_norm_forward(module: nn.Module) -> bool:
    """Whether `module` is a torch norm layer whose forward is torch's own: only then is its output
    exactly norm(x) * weight + bias, so an adapter can fold into it. A subclass with its own forward
    (one that takes a condition, or computes more) keeps it, and its adapter runs after it."""
    return isinstance(module, nn.modules.batchnorm._NormBase) and type(module).forward.__module__.startswith(
        "torch.nn."
    )


def _is_plain_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, _BatchNorm) and runs_torch_norm_forward(module)


def _folds(module: nn.Module) -> bool:
    return _is_plain_batch_norm(module) or is_conditional_norm(module)


def norm_fold(module: nn.Module, slot: AdapterSlot | None, input: torch.Tensor) -> tuple[Adapter, str] | None:
    """(active adapter, how) when, for this call, the adapter runs folded into its norm site: into
    a BatchNorm in eval mode with running statistics as its `norm_fold` says, or as a scale/shift
    ('affine') into a conditional norm's per-sample gain and bias (in any mode). Else None."""
    if not _folds(module) or slot is None or not slot.enabled or slot.active not in slot:
        return None
    if slot.per_sample is not None:  # several adapters in one batch: each after the norm
        return None
    adapter: Adapter = slot[slot.active]
    if is_conditional_norm(module):
        return (adapter, "affine") if adapter.norm_fold(input) == "affine" else None
    if module.training or module.running_mean is None:
        return None
    how = adapter.norm_fold(input)
    return None if how is None else (adapter, how)


def eval_affine(norm: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with norm(x) = x * scale + shift for an eval-mode BatchNorm, per channel."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    return scale, shift if norm.bias is None else shift + norm.bias


def batch_norm_site_forward(self: _BatchNorm, input: torch.Tensor) -> torch.Tensor:
    """A BatchNorm site's forward: its adapter folded in where it can, else applied after it. A
    scale/shift goes into the norm's affine: one batch_norm call with weight w * s and bias
    b * s + t (exactly w and b at init). A point-wise adapter takes the norm's affine into its
    blocks: one grouped 1x1 with a bias. The fold is decided once per call, here."""
    slot = module_slot(self)
    plan = norm_fold(self, slot, input)
    if plan is None:
        return slot(type(self).forward(self, input), (input,), {})
    adapter, how = plan
    if how != "affine":
        return adapter.after_affine(input, *eval_affine(self), how)
    scale, shift = adapter.affine_terms()
    weight = scale if self.weight is None else self.weight * scale
    bias = shift if self.bias is None else torch.addcmul(shift, self.bias, scale)
    return F.batch_norm(input, self.running_mean, self.running_var, weight, bias, False, 0.0, self.eps)


def conditional_norm_site_forward(self: nn.Module, input: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """A conditional norm site's forward: a scale/shift folded into its per-sample affine,
    norm(x) * (gain * s) + (bias * s + t), one pass less and exactly gain and bias at init; any
    other adapter applied after it (with the call's condition)."""
    slot = module_slot(self)
    plan = norm_fold(self, slot, input)
    if plan is None:
        return slot(type(self).forward(self, input, *args, **kwargs), (input, *args), kwargs)
    scale, shift = plan[0].affine_terms()
    gain, bias = self.conditional_affine(*args, **kwargs)
    normalised = self.norm(input)
    trailing = [1] * (normalised.dim() - 2)
    return torch.addcmul(
        torch.addcmul(shift, bias, scale).reshape(*bias.shape, *trailing),
        normalised,
        (gain * scale).reshape(*gain.shape, *trailing),
    )


def apply_slot_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook of a module site that cannot fold: hand the output (and call arguments) to
    its slot."""
    return module_slot(module)(output, args, kwargs)


SITE_FORWARDS = (batch_norm_site_forward, conditional_norm_site_forward)


def attach_slot(module: nn.Module, slot: AdapterSlot) -> None:
    """Make `slot` a child of a module site and apply it to the module's output: a norm site that
    can fold gets its site forward (an attribute of this one instance), any other a forward hook."""
    module.add_module(SLOT_ATTRIBUTE, slot)
    if _is_plain_batch_norm(module):
        module.forward = types.MethodType(batch_norm_site_forward, module)
    elif is_conditional_norm(module):
        module.forward = types.MethodType(conditional_norm_site_forward, module)
    else:
        module.register_forward_hook(apply_slot_hook, with_kwargs=True)


def detach_slot(module: nn.Module) -> None:
    """Undo `attach_slot`: the module is again exactly what it was."""
    del module._modules[SLOT_ATTRIBUTE]
    forward = module.__dict__.get("forward")
    if getattr(forward, "__func__", None) in SITE_FORWARDS:
        del module.__dict__["forward"]
    for hook_id, hook in list(module._forward_hooks.items()):
        if hook is apply_slot_hook:
            del module._forward_hooks[hook_id]
            module._forward_hooks_with_kwargs.pop(hook_id, None)
