"""`AdapterSlot`: the named adapters at one site, applied to the site's output.

A module site keeps its own class and state_dict keys: its slot is attached as the child
`gan_adapters` and applied by a forward hook (`hooks.py`). A call site (a functional batch_norm, or one
call of a module called at several sites) gets its slot as a node in its owner's graph.
Either way the slot receives the site's output and call arguments, so a conditional
adapter can read the layer's condition.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError
from gan_adapters.surgery.base import Adapter

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
        self.per_sample: tuple[tuple[str | None, ...], torch.Tensor] | None = None
        """(adapter names, index (N,) into them) while `adapters_per_sample` routes a batch."""

    def _condition(self, args: tuple, kwargs: dict | None) -> torch.Tensor | None:
        if self.condition_name is None:
            return None
        if kwargs and self.condition_name in kwargs:
            return kwargs[self.condition_name]
        position = self.condition_position
        return args[position] if 0 <= position < len(args) else None

    def _run_adapter(
        self, name: str | None, output: torch.Tensor, args: tuple, kwargs: dict | None
    ) -> torch.Tensor:
        if name is None or name not in self:
            return output
        adapter: Adapter = self[name]
        return adapter(output, self._condition(args, kwargs) if adapter.conditional else None)

    def forward(self, output: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if not self.enabled or (self.active not in self and self.per_sample is None):
            return output
        if not isinstance(output, torch.Tensor):
            raise AdapterStateError(
                f"site {self.site_id!r} returned {type(output).__name__}, not a tensor: "
                "adapters need a layer whose output is one (N, C, ...) tensor"
            )
        if self.per_sample is None:
            return self._run_adapter(self.active, output, args, kwargs)
        names, index = self.per_sample
        if index.shape[0] != output.shape[0]:
            raise AdapterStateError(
                f"adapters_per_sample was given {index.shape[0]} names for a batch of {output.shape[0]}"
            )
        # Every adapter runs on the whole batch and each row takes its own: a loop over the few
        # adapters, none over samples, so one graph under torch.compile.
        outs = torch.stack([self._run_adapter(name, output, args, kwargs) for name in names])
        return outs[index, torch.arange(output.shape[0], device=output.device)]

    def extra_repr(self) -> str:
        return f"site={self.site_id!r}, active={self.active!r}, enabled={self.enabled}"


def module_slot(module: nn.Module) -> AdapterSlot | None:
    """The slot attached to a module site, if any."""
    slot = module._modules.get(SLOT_ATTRIBUTE)
    return slot if isinstance(slot, AdapterSlot) else None


def is_adapter_key(key: str) -> bool:
    """Whether a state_dict key belongs to an adapter (module or graph slot)."""
    return any(part.startswith(SLOT_ATTRIBUTE) for part in key.split("."))
