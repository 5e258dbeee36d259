"""How wide a site's output is, read from what the module holds, without running it.

Sources, in order of trust: a registered spec's attribute; conventional attributes
(`num_features`, `output_size`, ...); the length of the module's own 1-D running-statistics
buffers and affine parameters (which must all agree); the output width of the layers that
produce its gain and bias from the condition; an inner normalisation module. Each source gives
the widths it allows; the first that settles on one width wins if no later source contradicts
it. Where they disagree or say nothing, the width is measured from example inputs, or the
error names the layer and everything that was looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from gan_adapters.surgery.norms import is_normalization, norm_spec
from gan_adapters.surgery.slots import AdapterSlot

CHANNEL_ATTRIBUTES = (
    "num_features",
    "output_size",
    "num_channels",
    "out_channels",
    "out_channel",
    "filters",
    "out_features",
    "channels",
    "n_channels",
    "dim",
    "out_dim",
    "dim_out",
    "features",
)
"""Attribute names that conventionally hold a layer's output width."""
AXIS_ATTRIBUTES = ("dim", "features")
"""Names that torch's own modules use for an axis or something else (nn.GLU(dim=1), nn.Softmax):
read as a width only on the user's own classes, where `dim` is the width by convention."""


@dataclass
class ChannelEvidence:
    """What each source says about a module's width, and the width they agree on (if any)."""

    sources: list[tuple[str, set[int]]] = field(default_factory=list)

    @property
    def channels(self) -> int | None:
        """The one width every source allows, taking the sources in order of trust."""
        allowed: set[int] | None = None
        for _, widths in self.sources:
            narrowed = widths if allowed is None else allowed & widths
            if not narrowed:
                return None  # a contradiction: measure instead of guessing
            allowed = narrowed
        return next(iter(allowed)) if allowed is not None and len(allowed) == 1 else None

    def describe(self) -> str:
        """What was looked at, for an error message."""
        if not self.sources:
            return "no channel attribute, no 1-D buffer or parameter, no conditioning layer, no inner norm"
        return "; ".join(f"{what}: {' or '.join(map(str, sorted(widths)))}" for what, widths in self.sources)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _children(module: nn.Module) -> list[nn.Module]:
    return [c for c in module.children() if not isinstance(c, AdapterSlot)]


def channel_evidence(module: nn.Module) -> ChannelEvidence:
    """Every source's view of a module's output width (see the module docstring)."""
    evidence = ChannelEvidence()
    spec = norm_spec(module)
    if spec is not None and spec.channels and _positive_int(getattr(module, spec.channels, None)):
        evidence.sources.append((f"registered attribute {spec.channels}", {getattr(module, spec.channels)}))
        return evidence
    from_torch = type(module).__module__.startswith("torch.")
    for name in CHANNEL_ATTRIBUTES:
        if from_torch and name in AXIS_ATTRIBUTES:
            continue
        if _positive_int(value := getattr(module, name, None)):
            evidence.sources.append((f"attribute {name}", {value}))
            break
    own = {
        name: tensor.shape[0]
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        if tensor is not None and tensor.dim() == 1 and tensor.is_floating_point()
    }
    if own:
        evidence.sources.append((f"1-D tensors {', '.join(sorted(own))}", set(own.values())))
        if len(set(own.values())) > 1:
            return evidence  # they disagree among themselves: nothing else can settle it
    # Linear/Embedding children are a conditional norm's gain and bias; in any other targeted layer
    # (a modulated conv's style affine, say) they say nothing about its width.
    widths = (
        [
            c.out_features if isinstance(c, nn.Linear) else c.embedding_dim
            for c in _children(module)
            if isinstance(c, (nn.Linear, nn.Embedding))
        ]
        if is_normalization(module)
        else []
    )
    if widths:
        # Two layers of one width are gain and bias; a single layer may produce both (2C).
        allowed = (
            {widths[0]}
            if len(widths) > 1 and len(set(widths)) == 1
            else set(widths) | {w // 2 for w in widths if w % 2 == 0}
        )
        evidence.sources.append(("conditioning layers' output widths", allowed))
    inner = [c for c in _children(module) if is_normalization(c)]
    if inner:
        found = channel_evidence(inner[0]).channels
        if found is not None:
            evidence.sources.append((f"inner {type(inner[0]).__name__}", {found}))
    if not evidence.sources:
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.dim() >= 2:
            evidence.sources.append(("weight's first dimension", {weight.shape[0]}))
    return evidence


def site_channels(module: nn.Module) -> int | None:
    """The channel count of a module's output read from what it holds (None: measure it)."""
    return channel_evidence(module).channels
