"""What every adapter kind shares: the `Adapter` base class, a kind's own settings
(`KindSettings`) and the registry that `@register_adapter_kind` fills.

Every adapter acts on dimension 1 (channels) of whatever it receives, (N, C), (N, C, L) or
(N, C, H, W), and starts as the exact identity in every precision, so a freshly injected
generator computes bit for bit what it did before. A kind declares the settings that are its
own (apgc's group size, cbn's class count) as a `KindSettings` dataclass given to the decorator:
`inject`, `AdapterConfig`'s files, `summary` and the command line read them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from gan_adapters.errors import AdapterStateError, ConfigError
from gan_adapters.serial import Serialisable


@dataclass
class KindSettings(Serialisable):
    """A kind's own settings: none in this base. A kind with some subclasses it with `setting()`
    fields (a docstring under each: it is the command line's help) and gives it to
    `register_adapter_kind(name, settings=...)`; `validate` holds rules between its fields."""

    config_name = "adapter settings"

    def arguments(self, channels: int, site: str) -> dict[str, Any]:
        """The kind's constructor arguments at a site of `channels` channels (by default the
        settings themselves, by name); refuse with a `SiteError` what does not fit the site."""
        return self.to_dict()

    def merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """These settings with `changes` on top, as flat data (a kind whose settings exclude one
        another, such as apgc's three sizes, drops the others when one is changed)."""
        return self.to_dict() | changes


ADAPTER_KINDS: dict[str, type[Adapter]] = {}
"""Adapter kinds by name; extend with `register_adapter_kind`."""


def register_adapter_kind(name: str, settings: type[KindSettings] = KindSettings):
    """Class decorator that makes an `Adapter` subclass available as `inject(kind=name)`, with
    `settings` (a `KindSettings` dataclass) declaring the settings that are the kind's own."""
    if not (isinstance(settings, type) and issubclass(settings, KindSettings)):
        raise ConfigError(f"settings= of adapter kind {name!r} must be a KindSettings subclass")
    if "__dataclass_fields__" not in vars(settings):  # plain annotations are enough
        settings = dataclass(settings)

    def add(cls: type[Adapter]) -> type[Adapter]:
        if name in ADAPTER_KINDS and ADAPTER_KINDS[name] is not cls:
            raise ConfigError(f"adapter kind {name!r} is already registered by {ADAPTER_KINDS[name]}")
        cls.kind, cls.settings = name, settings
        ADAPTER_KINDS[name] = cls
        return cls

    return add


def per_channel(values: torch.Tensor, ndim: int) -> torch.Tensor:
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
    settings: ClassVar[type[KindSettings]] = KindSettings
    """The kind's own settings (given to `register_adapter_kind`)."""
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
        return torch.addcmul(per_channel(shift, y.dim()), y, 1 + per_channel(gain, y.dim()))
