"""Living with injected adapters: switch, disable, condition, list trainables, delete, unload."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError
from gan_adapters.surgery.hooks import detach_slot
from gan_adapters.surgery.rewrite import restore_owners
from gan_adapters.surgery.slots import module_slot
from gan_adapters.surgery.state import STATE_ATTRIBUTE, activate, remove_load_hook, require_state, slots_of


def set_adapter(model: nn.Module, name: str) -> None:
    """Switch every site to the adapter called `name` (one base, many small domains).

    Only that adapter's parameters stay trainable.
    """
    activate(model, name)


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapters a model holds, in injection order."""
    return list(require_state(model).adapters)


def active_adapter(model: nn.Module) -> str:
    """Name of the adapter the model currently applies."""
    return require_state(model).active


def set_execution(model: nn.Module, *, fold: str | None = None, pointwise_impl: str | None = None) -> None:
    """Change how every adapter of `model` runs, not what it computes: `fold` and `pointwise_impl`
    as in `AdapterConfig` (e.g. `fold="fast"` to train on a GPU after an exactly-checked inject).

    Both are validated before anything changes; saved adapter files keep the new choice.
    """
    state = require_state(model)
    changes = {k: v for k, v in {"fold": fold, "pointwise_impl": pointwise_impl}.items() if v is not None}
    configs = {name: dataclasses.replace(record.config, **changes) for name, record in state.adapters.items()}
    for name, config in configs.items():
        state.adapters[name].config = config
    for slot in slots_of(model):
        for name, adapter in slot.items():
            adapter.fold, adapter.pointwise_impl = configs[name].fold, configs[name].pointwise_impl


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should see: the active adapter's (and any you unfroze)."""
    return [p for p in model.parameters() if p.requires_grad]


@contextmanager
def disable_adapters(model: nn.Module) -> Iterator[nn.Module]:
    """Run the base generator alone inside the block; the adapters come back after it."""
    slots = slots_of(model)
    before = [slot.enabled for slot in slots]
    for slot in slots:
        slot.enabled = False
    try:
        yield model
    finally:
        for slot, enabled in zip(slots, before, strict=True):
            slot.enabled = enabled


@contextmanager
def condition(model: nn.Module, labels: torch.Tensor | Sequence[int] | int) -> Iterator[nn.Module]:
    """Choose the target class of each sample for `cbn` adapters inside the block.

    `labels` is one integer per sample (or one integer for the whole batch).
    """
    state = require_state(model)
    name = state.active
    adapters = [s[name] for s in slots_of(model) if name in s and s[name].takes_labels]
    if not adapters:
        kind = state.adapters[name].config.kind
        raise AdapterStateError(
            f"condition() chooses the classes of adapters that take labels (such as 'cbn'); "
            f"the active adapter {name!r} is {kind!r}"
        )
    labels = torch.as_tensor(labels, device=next(adapters[0].parameters()).device)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.dim() > 1:
        raise AdapterStateError(
            f"labels must be integers, one per sample; got dtype {labels.dtype} shape {tuple(labels.shape)}"
        )
    classes = adapters[0].num_classes
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0].item()
        raise AdapterStateError(
            f"label {bad} is out of range: the 'cbn' adapter {name!r} has {classes} classes"
        )
    for adapter in adapters:
        adapter.labels = labels
    try:
        yield model
    finally:
        for adapter in adapters:
            adapter.labels = None


def delete_adapter(model: nn.Module, name: str) -> nn.Module:
    """Remove one named adapter; removing the last one unloads. Returns the model to use."""
    state = require_state(model)
    state.record(name)
    if len(state.adapters) == 1:
        return unload(model)
    for slot in slots_of(model):
        if name in slot:
            del slot[name]
    del state.adapters[name]
    if state.active == name:
        activate(model, next(iter(state.adapters)))
    return model


def unload(model: nn.Module) -> nn.Module:
    """Remove every adapter: outputs, classes and state_dict keys are the original's again.

    Returns the original model object (which differs from `model` only when inject had to
    return a GraphModule).
    """
    state = require_state(model)
    root = restore_owners(model, state.rewritten)
    for module in list(root.modules()):
        if module_slot(module) is not None:
            detach_slot(module)
    for param_name, param in root.named_parameters():
        param.requires_grad_(state.original_requires_grad.get(param_name, param.requires_grad))
    for holder in {id(model): model, id(root): root}.values():
        remove_load_hook(holder)
        holder.__dict__.pop(STATE_ATTRIBUTE, None)
    return root
