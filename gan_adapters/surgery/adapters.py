"""The adapter modules and the registry of kinds (`ssa`, `cbn`, `apc`, `apgc`).

Every adapter acts on dimension 1 (channels) of whatever it receives, (N, C), (N, C, L) or
(N, C, H, W), and starts as the exact identity in every precision: scale/shift start at
1/0, and the point-wise convolutions are parameterised as x + conv(x, delta) with delta
starting at zero, so a freshly injected generator computes bit for bit what it did before.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError, ConfigError
from gan_adapters.surgery.paths import FOLDED, choose_path
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS, fold_affine_into_pointwise

ADAPTER_KINDS: dict[str, type[Adapter]] = {}
"""Adapter kinds by name; extend with `register_adapter_kind`."""


def register_adapter_kind(name: str):
    """Class decorator that makes an `Adapter` subclass available as `inject(kind=name)`."""

    def add(cls: type[Adapter]) -> type[Adapter]:
        if name in ADAPTER_KINDS and ADAPTER_KINDS[name] is not cls:
            raise ConfigError(f"adapter kind {name!r} is already registered by {ADAPTER_KINDS[name]}")
        cls.kind = name
        ADAPTER_KINDS[name] = cls
        return cls

    return add


def _per_channel(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape (C,) or (N, C) values to broadcast over an input of `ndim` dimensions."""
    lead = values.shape[0] if values.dim() == 2 else 1
    return values.reshape(lead, -1, *([1] * (ndim - 2)))


class Adapter(nn.Module):
    """Base class: a channel-wise transform after a normalisation layer, optionally conditioned.

    With `condition_features`, a zero-initialised linear layer maps the layer's condition
    (BigGAN's y = [class embedding, z chunk]) to a per-sample gain and shift applied after
    the kind's own transform: out = t(x) * (1 + gain(y)) + shift(y). Where the layer is
    conditioned on integer labels (`condition_is_label`), an embedding of
    `condition_features` classes plays that role.
    """

    kind: ClassVar[str] = ""
    sized: ClassVar[bool] = False
    """Whether the kind takes a size (groups / group_size / ratio)."""
    pointwise: ClassVar[bool] = False
    """Whether the kind mixes channels (so it has a group size)."""
    takes_labels: ClassVar[bool] = False
    """Whether the kind chooses its parameters by class labels (see `manage.condition`)."""
    group_size: int | None = None
    """Channels per group for the point-wise kinds; None for per-channel kinds."""
    fold: str = "exact"
    """Folding after a BatchNorm in eval mode (see `AdapterConfig.fold`): exact, fast, always, never."""
    pointwise_impl: str = "auto"
    """The grouped 1x1 implementation of the point-wise kinds (see `AdapterConfig.pointwise_impl`)."""

    def __init__(
        self,
        channels: int,
        *,
        group_size: int | None = None,
        bias: bool = False,
        num_classes: int = 1,
        condition_features: int | None = None,
        condition_is_label: bool = False,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.condition_fc: nn.Linear | nn.Embedding | None = None
        if condition_is_label:
            self.condition_fc = nn.Embedding(condition_features, 2 * channels)
            nn.init.zeros_(self.condition_fc.weight)
        elif condition_features:
            self.condition_fc = nn.Linear(condition_features, 2 * channels)
            nn.init.zeros_(self.condition_fc.weight)
            nn.init.zeros_(self.condition_fc.bias)

    @property
    def conditional(self) -> bool:
        """Whether this adapter reads the layer's condition."""
        return self.condition_fc is not None

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The kind's own, unconditional map."""
        raise NotImplementedError

    def why_not_foldable(self) -> str | None:
        """Why this adapter cannot be folded into a per-channel affine (None: it can)."""
        if self.conditional:
            return "a conditional adapter depends on the condition; it has no single affine to fold"
        return f"a {self.kind!r} adapter mixes channels; only a per-channel scale/shift folds into an affine"

    def affine_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift), each (C,), of a foldable adapter (differentiable): x * scale + shift."""
        raise AdapterStateError(self.why_not_foldable() or f"{self.kind!r} has no per-channel affine")

    def channel_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`affine_terms`, detached (for merging into base weights)."""
        scale, shift = self.affine_terms()
        return scale.detach(), shift.detach()

    def offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This adapter's change from the identity, for blending: (delta (K, C, g), bias (K, C)) such
        that class k maps x to x + blockdiag(delta[k]) x + bias[k] (K = 1 but for per-class kinds;
        g = 1 for per-channel kinds, where delta is the diagonal). The condition's part is apart."""
        raise NotImplementedError

    def set_offset(self, delta: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the parameters from an `offset` of this adapter's own shape (inverse of `offset`)."""
        raise NotImplementedError

    def norm_fold(self, x: torch.Tensor) -> str | None:
        """How this adapter runs folded into the eval-mode BatchNorm that produced `x` for this call:
        'affine' (into the norm's own weight and bias), a folded path name, or None (it does not)."""
        if self.fold == "never" or self.why_not_foldable() is not None:
            return None
        return "affine"

    def after_affine(
        self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, path: str
    ) -> torch.Tensor:
        """This adapter applied to x * scale + shift in one pass (`path` from `norm_fold`)."""
        raise AdapterStateError(f"a {self.kind!r} adapter folds into the norm's affine, not the other way")

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        y = self.transform(x)
        if self.condition_fc is None:
            return y
        if condition is None:
            raise AdapterStateError(
                "this adapter is conditional but its layer was called without a condition"
            )
        if isinstance(self.condition_fc, nn.Embedding):
            modulation = self.condition_fc(condition.reshape(-1).long())
        else:
            modulation = self.condition_fc(condition.reshape(condition.shape[0], -1))
        gain, shift = modulation.chunk(2, dim=1)
        return torch.addcmul(_per_channel(shift, y.dim()), y, 1 + _per_channel(gain, y.dim()))


@register_adapter_kind("ssa")
class ScaleShift(Adapter):
    """Per-channel scale and shift, y = s * x + t (Noguchi & Harada 2019): 2C parameters."""

    def __init__(self, channels: int, **options) -> None:
        super().__init__(channels, **options)
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(_per_channel(self.shift, x.dim()), x, _per_channel(self.scale, x.dim()))

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


@register_adapter_kind("cbn")
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
        return torch.addcmul(_per_channel(shift, x.dim()), x, _per_channel(scale, x.dim()))

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


@register_adapter_kind("apc")
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


@register_adapter_kind("apgc")
class GroupedPointwiseConv(PointwiseConv):
    """A grouped 1x1 convolution with group size g, identity at start: C * g parameters."""

    sized = True
