"""`summary(model)`: per site and in total, what was injected and what it costs.

Counts every trainable tensor, not only the adapters' own, so the printed ratio against
`ssa` is the truth even when normalisation layers are trained too (`train_norm=True`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from gan_adapters.surgery.slots import is_adapter_key
from gan_adapters.surgery.state import require_state, slots_of


@dataclass(frozen=True)
class SiteRow:
    """One site of the summary."""

    site: str
    layer: str
    channels: int
    kind: str
    group_size: int | None
    groups: int | None
    parameters: int
    inserted_by: str
    conditional: bool


@dataclass
class AdapterSummary:
    """What one named adapter adds to a model; renders as a rich table."""

    adapter_name: str
    kind: str
    settings: dict[str, Any]
    """The kind's own settings (apgc: its size and bias; a registered kind's own)."""
    rows: list[SiteRow]
    adapter_parameters: int
    ssa_parameters: int
    trainable_parameters: int
    base_parameters: int
    route: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    left_alone: dict[str, list[str]] = field(default_factory=dict)
    """Normalisation-like layers without an adapter (LayerNorm, GroupNorm, RMS and hand-written
    norms...), paths by class name: `targets=` (`-t`) adapts them too."""

    @property
    def ratio(self) -> float:
        """Adapter parameters over those of `ssa` at the same sites (the research's ratio)."""
        return self.adapter_parameters / self.ssa_parameters if self.ssa_parameters else 0.0

    def to_dict(self) -> dict:
        """Plain data (JSON-safe)."""
        return asdict(self) | {"ratio": self.ratio}

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        own = "".join(f", {k}={v}" for k, v in self.settings.items())
        table = Table(title=f"adapter {self.adapter_name!r} ({self.kind}{own})", title_justify="left")
        for name in ("site", "layer", "channels", "group size", "groups", "parameters", "via"):
            numeric = name in ("channels", "group size", "groups", "parameters")
            table.add_column(name, justify="right" if numeric else "left", overflow="fold")
        for row in self.rows:
            table.add_row(
                row.site + (" (cond)" if row.conditional else ""),
                row.layer,
                str(row.channels),
                "-" if row.group_size is None else str(row.group_size),
                "-" if row.groups is None else str(row.groups),
                f"{row.parameters:,}",
                row.inserted_by,
            )
        total = self.base_parameters + self.adapter_parameters
        lines = [
            f"{len(self.rows)} sites, {self.adapter_parameters:,} adapter parameters "
            f"= {self.ratio:.2f}x ssa ({self.ssa_parameters:,})",
            f"trainable {self.trainable_parameters:,} of {total:,} parameters "
            f"({100 * self.trainable_parameters / max(1, total):.3f} %)",
            f"sites found by: {self.route}",
        ]
        shown = self.failures if len(self.failures) <= 3 else self.failures[:2]
        lines += [f"fx failed: {failure}" for failure in shown]
        if len(self.failures) > len(shown):
            lines.append(
                f"fx failed in {len(self.failures) - len(shown)} more forwards (summary.failures lists them)"
            )
        if self.left_alone:
            found = ", ".join(
                f"{cls} x{len(paths)} ({', '.join(paths[:2])}{', ...' if len(paths) > 2 else ''})"
                for cls, paths in self.left_alone.items()
            )
            first = next(iter(self.left_alone))
            lines.append(f"not adapted: {found}; to adapt them too: targets=[{first!r}, ...] (-t {first})")
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return Group(table, Text("\n".join(lines)))

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=140, record=True, file=_Discard(), color_system=None)
        console.print(self)
        return console.export_text()


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


_ROUTES = {
    "fx": "torch.fx (whole model traced)",
    "fx-partial": "torch.fx, submodule by submodule (the root's forward did not trace)",
    "export": "torch.export (torch.fx failed at the root)",
    "module": "module matching (no graph of the root's forward)",
}


def summary(model: nn.Module, adapter_name: str | None = None) -> AdapterSummary:
    """Report one adapter (the active one by default): per-site rows and totals."""
    state = require_state(model)
    name = adapter_name or state.active
    record = state.record(name)
    slots = {slot.site_id: slot for slot in slots_of(model) if name in slot}
    rows = []
    for site in record.sites:
        adapter = slots[site.id][name]
        group_size = adapter.group_size
        rows.append(
            SiteRow(
                site=site.id,
                layer=site.class_name,
                channels=site.channels,
                kind=record.config.kind,
                group_size=group_size,
                groups=site.channels // group_size if group_size else None,
                parameters=sum(p.numel() for p in adapter.parameters()),
                inserted_by=site.inserted_by,
                conditional=adapter.conditional,
            )
        )
    named = dict(model.named_parameters())
    return AdapterSummary(
        adapter_name=name,
        kind=record.config.kind,
        settings={k: v for k, v in record.config.settings.to_dict().items() if v is not None},
        rows=rows,
        adapter_parameters=sum(r.parameters for r in rows),
        ssa_parameters=sum(2 * r.channels for r in rows),
        trainable_parameters=sum(p.numel() for p in named.values() if p.requires_grad),
        base_parameters=sum(p.numel() for k, p in named.items() if not is_adapter_key(k)),
        route=_ROUTES[record.discovery.route],
        failures=[str(f) for f in record.discovery.failures],
        notes=list(record.discovery.notes),
        warnings=list(record.discovery.warnings),
        left_alone=_left_alone(model, [row.site for row in rows]),
    )


NORM_LIKE = re.compile(r"Norm|RMS", re.IGNORECASE)
"""Class names of normalisation-like layers (LayerNorm, GroupNorm, PixelNorm, ChannelRMSNorm...)."""


def _left_alone(model: nn.Module, sites: list[str]) -> dict[str, list[str]]:
    """Normalisation-like modules that are not a site nor inside or around one, by class name."""
    found: dict[str, list[str]] = {}
    module_sites = [s for s in sites if "::" not in s]
    for path, module in model.named_modules():
        if (
            not path
            or is_adapter_key(path)
            or any(path == s or path.startswith(s + ".") or s.startswith(path + ".") for s in module_sites)
        ):
            continue
        if NORM_LIKE.search(type(module).__name__) and not list(module.children()):
            found.setdefault(type(module).__name__, []).append(path)
    return found
