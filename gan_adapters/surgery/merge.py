"""`merge(model)`: fold scale/shift adapters into the normalisation affine they follow.

A BatchNorm's output is xhat * w + b; a scale/shift after it gives xhat * (w * s) + (b * s + t),
so folding is an exact identity (up to float rounding) whenever the layer owns a plain
per-channel affine. Where it does not, merge leaves the adapter in place and says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError
from gan_adapters.surgery.base import Adapter
from gan_adapters.surgery.hooks import detach_slot, runs_torch_norm_forward
from gan_adapters.surgery.manage import unload
from gan_adapters.surgery.slots import AdapterSlot
from gan_adapters.surgery.state import require_state, slots_of

log = logging.getLogger(__name__)


@dataclass
class MergeReport:
    """Which sites were folded into the base, and why the others were not."""

    merged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _why_not(site, adapter: Adapter, module: nn.Module | None) -> str | None:
    reason = adapter.why_not_foldable()
    if reason:
        return reason
    if module is None:
        return f"inline {site.class_name} call: no layer owns an affine to fold into"
    if not runs_torch_norm_forward(module):
        return f"{type(module).__name__} computes its affine in its own forward; folding would not be exact"
    if not module.affine:
        return f"{type(module).__name__} has no affine parameters to fold into (affine=False)"
    return None


def merge(model: nn.Module) -> MergeReport:
    """Fold the adapter into the base wherever exact; returns what was merged and what not.

    Works on a model holding one adapter (folding changes the base all adapters share).
    Merged sites lose their adapter; when every site merged, the model is plain again.
    """
    state = require_state(model)
    if len(state.adapters) > 1:
        raise AdapterStateError(
            f"merge folds an adapter into the shared base weights, which would change the other "
            f"adapters ({', '.join(state.adapters)}); delete_adapter the others first"
        )
    name = state.active
    record = state.adapters[name]
    slots: dict[str, AdapterSlot] = {slot.site_id: slot for slot in slots_of(model)}
    report = MergeReport()
    for site in record.sites:
        slot = slots[site.id]
        adapter = slot[name]
        module = model.get_submodule(site.module_path) if site.call is None else None
        reason = _why_not(site, adapter, module)
        if reason:
            report.skipped[site.id] = reason
            continue
        scale, shift = adapter.channel_affine()
        with torch.no_grad():
            module.weight.mul_(scale)
            module.bias.mul_(scale).add_(shift)
        del slot[name]
        detach_slot(module)
        report.merged.append(site.id)
    for site_id, reason in report.skipped.items():
        log.warning("gan_adapters: not merged %s: %s", site_id, reason)
    if not report.skipped:
        unload(model)
    else:
        record.discovery.sites = [s for s in record.sites if s.id in report.skipped]
    return report
