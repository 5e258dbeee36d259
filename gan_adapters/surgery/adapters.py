"""The built-in adapter kinds (`ssa`, `cbn`, `apc`, `apgc`) and the settings each owns.

Scale/shift start at 1/0; the point-wise convolutions are parameterised as x + conv(x, delta)
with delta starting at zero: each is the exact identity at injection, in every precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError, ConfigError, SiteError
from gan_adapters.settings import setting
from gan_adapters.surgery.base import Adapter, KindSettings, per_channel, register_adapter_kind
from gan_adapters.surgery.paths import FOLDED, choose_path
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS, fold_affine_into_pointwise

DEFAULT_RATIO = 4.0
"""Parameter ratio against `ssa` that `apgc` uses when no size is given (group size 8)."""
SIZES = ("groups", "group_size", "ratio")
"""apgc's three spellings of one choice, its size."""


@dataclass
class ClassSettings(KindSettings):
    """`cbn`'s settings."""

    num_classes: int = setting(1, minimum=1)
    """cbn: target classes (one scale/shift pair each)."""


@dataclass
class PointwiseSettings(KindSettings):
    """`apc`'s settings (and `apgc`'s, which adds a size)."""

    bias: bool = False
    """apc/apgc: a learned shift beside the 1x1 convolution."""

    def arguments(self, channels: int, site: str) -> dict[str, object]:
        return {"group_size": channels, "bias": self.bias}


@dataclass
class GroupedSettings(PointwiseSettings):
    """`apgc`'s settings: its size, as exactly one of three spellings, and a bias."""

    groups: int | None = setting(None, minimum=1)
    """apgc: number of groups per layer (torch's groups=)."""
    group_size: int | None = setting(None, minimum=1)
    """apgc: channels per group."""
    ratio: float | None = setting(None, above=0)
    """apgc: parameters per layer against ssa (group size = 2 x ratio); 4 when no size is given."""

    def validate(self) -> None:
        given = {k: v for k, v in self.to_dict().items() if k in SIZES and v is not None}
        if len(given) > 1:
            raise ConfigError(
                f"give at most one adapter size, got {', '.join(f'{k}={v}' for k, v in given.items())}: "
                "groups= (groups per layer), group_size= (channels per group) and ratio= "
                "(parameters against ssa) are three spellings of the same choice"
            )
        if self.ratio is not None and float(2 * self.ratio) != int(2 * self.ratio):
            raise ConfigError(
                f"ratio={self.ratio} gives a group size of {2 * self.ratio}; "
                "the group size (2 x ratio) must be a whole number"
            )

    def merged(self, changes: dict[str, object]) -> dict[str, object]:
        kept = self.to_dict()
        if any(k in changes for k in SIZES):
            kept = {k: v for k, v in kept.items() if k not in SIZES}
        return kept | changes

    def arguments(self, channels: int, site: str) -> dict[str, object]:
        return {"group_size": self.group_size_for(channels, site), "bias": self.bias}

    def group_size_for(self, channels: int, site: str) -> int:
        """Channels per group at a site of `channels` channels (refused where it does not divide)."""
        if self.groups is not None:
            if channels % self.groups:
                raise SiteError(
                    f"groups={self.groups} does not divide the {channels} channels of layer "
                    f"{site!r}; pick a group count that divides every layer's channels, or use "
                    "ratio= / group_size= for a size that scales with the layer"
                )
            return channels // self.groups
        size = self.group_size
        if size is None:
            size = int(2 * (self.ratio if self.ratio is not None else DEFAULT_RATIO))
        if channels % size:
            raise SiteError(
                f"group size {size} does not divide the {channels} channels of layer {site!r}; "
                "choose a smaller size, or exclude that layer with exclude="
            )
        return size


@register_adapter_kind("ssa")
class ScaleShift(Adapter):
    """Per-channel scale and shift, y = s * x + t (Noguchi & Harada 2019): 2C parameters."""

    def __init__(self, channels: int, **options) -> None:
        super().__init__(channels, **options)
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(per_channel(self.shift, x.dim()), x, per_channel(self.scale, x.dim()))

    def why_not_foldable(self) -> str | None:
        return super().why_not_foldable() if self.conditional else None

    def affine_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scale, self.shift

    def offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.scale - 1)[None, :, None], self.shift[None]

    def set_offset(self, delta: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            self.scale.copy_(1 + delta[0, :, 0])
            self.shift.copy_(bias[0])

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


@register_adapter_kind("cbn", settings=ClassSettings)
class ClassScaleShift(Adapter):
    """One scale/shift pair per target class, chosen by labels: 2C parameters per class.

    Labels come from `gan_adapters.condition(model, labels)`; with one class and no labels
    it is `ssa`. One adapted generator can so hold several small target domains.
    """

    takes_labels = True

    def __init__(self, channels: int, *, num_classes: int = 1, **options) -> None:
        super().__init__(channels, **options)
        self.num_classes = num_classes
        self.scale = nn.Parameter(torch.ones(num_classes, channels))
        self.shift = nn.Parameter(torch.zeros(num_classes, channels))
        self.labels: torch.Tensor | None = None

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            if self.num_classes > 1:
                raise AdapterStateError(
                    f"a 'cbn' adapter with {self.num_classes} classes needs labels: call the "
                    "model inside `with gan_adapters.condition(model, labels):`"
                )
            scale, shift = self.scale[0], self.shift[0]
        else:
            if self.labels.dim() and self.labels.shape[0] != x.shape[0]:
                raise AdapterStateError(
                    f"condition() was given {self.labels.shape[0]} labels for a batch of {x.shape[0]}"
                )
            scale, shift = self.scale[self.labels], self.shift[self.labels]
        return torch.addcmul(per_channel(shift, x.dim()), x, per_channel(scale, x.dim()))

    def why_not_foldable(self) -> str | None:
        if self.num_classes > 1:
            return "a 'cbn' adapter with several classes depends on labels; it has no single affine to fold"
        return super().why_not_foldable() if self.conditional else None

    def affine_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scale[0], self.shift[0]

    def offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.scale - 1)[:, :, None], self.shift

    def set_offset(self, delta: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            self.scale.copy_(1 + delta[:, :, 0])
            self.shift.copy_(bias)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_classes={self.num_classes}"


@register_adapter_kind("apc", settings=PointwiseSettings)
class PointwiseConv(Adapter):
    """A full 1x1 convolution, identity at start: C * C parameters (no grouping)."""

    pointwise = True

    def __init__(self, channels: int, *, group_size: int | None = None, bias: bool = False, **options):
        super().__init__(channels, **options)
        self.group_size = group_size or channels
        self.groups = channels // self.group_size
        # The weight is I + delta: delta at zero is an exact identity even under bf16/TF32.
        self.delta = nn.Parameter(torch.zeros(channels, self.group_size))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def path(self, x: torch.Tensor, after_norm: bool) -> str:
        """The path this call runs: the table's fastest allowed by `fold` and `pointwise_impl`."""
        fold = self.fold if after_norm else "never"  # a site that folds passes no condition
        dtype = (
            torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        )
        # Under torch.compile the sizes may be symbolic (a second batch size makes them so), and the
        # lookup must stay a constant: the path is chosen by channels and group size alone there.
        pixels = 0 if torch.compiler.is_compiling() else x.numel() // self.channels
        return choose_path(
            str(x.device), dtype, self.channels, self.group_size, pixels, self.pointwise_impl, fold
        )

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        implementation = POINTWISE_IMPLEMENTATIONS[self.path(x, after_norm=False)]
        return x + implementation(x, self.delta, self.bias, self.groups)

    def offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        bias = self.bias if self.bias is not None else torch.zeros_like(self.delta[:, 0])
        return self.delta[None], bias[None]

    def set_offset(self, delta: torch.Tensor, bias: torch.Tensor) -> None:
        if self.bias is None and bool(bias.any()):
            raise AdapterStateError(f"this {self.kind!r} adapter has no bias to hold a shift")
        with torch.no_grad():
            self.delta.copy_(delta[0])
            if self.bias is not None:
                self.bias.copy_(bias[0])

    def norm_fold(self, x: torch.Tensor) -> str | None:
        path = self.path(x, after_norm=True)
        return path if path.startswith(FOLDED) else None

    def after_affine(
        self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, path: str
    ) -> torch.Tensor:
        weight, bias = fold_affine_into_pointwise(self.delta, self.bias, scale, shift, self.groups)
        return POINTWISE_IMPLEMENTATIONS[path.removeprefix(FOLDED)](x, weight, bias, self.groups)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, group_size={self.group_size}, groups={self.groups}, "
            f"bias={self.bias is not None}"
        )


@register_adapter_kind("apgc", settings=GroupedSettings)
class GroupedPointwiseConv(PointwiseConv):
    """A grouped 1x1 convolution with group size g, identity at start: C * g parameters."""
