"""`AdapterConfig`: what to inject and where, as a dataclass that round-trips to JSON and TOML."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gan_adapters.errors import ConfigError, SettingError, SiteError
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting
from gan_adapters.surgery.adapters import ADAPTER_KINDS
from gan_adapters.surgery.paths import FOLD_POLICIES
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

ROUTES = ("auto", "fx", "export", "module")
"""How sites are found: `auto` tries torch.fx, then torch.export, then module matching."""
DEFAULT_RATIO = 4.0
"""Parameter ratio against `ssa` used by `apgc` when no size is given (group size 8)."""


@dataclass
class AdapterConfig(Serialisable):
    """Everything that decides which adapters `inject` builds, and where.

    Sizes (`apgc` only; give at most one): `groups` is torch's meaning, the number of
    groups per layer; `group_size` is channels per group; `ratio` is the parameter ratio
    against `ssa` (group size = 2 * ratio), which is constant over layers of any width.
    `targets` and `exclude` hold class names or regular expressions over module paths.
    """

    config_name = "adapter config"

    kind: str = setting("apgc", flag=("--kind", "-k"))
    """Adapter kind (a registered one: ssa, cbn, apc, apgc, ...)."""
    groups: int | None = setting(None, minimum=1)
    """apgc: number of groups per layer (torch's groups=)."""
    group_size: int | None = setting(None, minimum=1)
    """apgc: channels per group."""
    ratio: float | None = setting(None, above=0)
    """apgc: parameters per layer against ssa (group size = 2 x ratio); 4 when no size is given."""
    targets: list[str] | None = setting(None, flag=("--target", "-t"))
    """Layers to adapt instead of the normalisation layers: a class name or a regex over module paths
    (repeatable), e.g. -t Conv2DMod -x to_rgb (StyleGAN2: its 3-channel to_rgb convs are Conv2DMod too)."""
    exclude: list[str] = setting(default_factory=list, flag=("--exclude", "-x"))
    """Class name or path regex to leave alone (repeatable)."""
    bias: bool = False
    conditional: bool = setting(False, flag="--conditional/--static")
    """Condition adapters on the layer's class condition."""
    train_norm: bool = setting(False, flag="--train-norm/--frozen-norm")
    """Also train the normalisation layers' own affine."""
    num_classes: int = setting(1, minimum=1)
    route: str = setting("auto", choices=ROUTES)
    """How sites are found: auto (fx, then torch.export, then module matching), fx, export or module."""
    fold: str = setting("exact", choices=FOLD_POLICIES)
    """Folding into a BatchNorm in eval mode before the adapter (frozen statistics, as in
    fine-tuning). `exact`: `ssa` (and one-class `cbn`) run inside the norm's affine, one
    batch_norm call, bit-exact at init. `fast`: also fold the norm into a point-wise adapter
    (one grouped 1x1 with a bias) where the path table measured that faster on this device;
    equal up to float rounding. `always`: fold wherever possible. `never`: two passes."""
    pointwise_impl: str = setting("auto", choices=("auto", *sorted(POINTWISE_IMPLEMENTATIONS)))
    """How `apc`/`apgc` run their grouped 1x1: `auto` (fastest in the measured path table for
    this device, dtype and shape; `conv` where the table has no row), `conv`, `bmm` or `dense`."""
    widths: dict[str, int] | None = None
    """Channel counts of targeted layers that state none, by class name or path regex: {"to_rgb": 3}."""
    blended_from: dict[str, float] | None = None
    """For an adapter made by `blend`: its parents' names and weights (a record; nothing reads it)."""

    def __post_init__(self) -> None:
        if isinstance(self.fold, bool):  # files written before fold was a policy
            self.fold = "exact" if self.fold else "never"
        super().__post_init__()

    def validate(self) -> None:
        """Rules between fields, and names that must be registered."""
        if self.kind not in ADAPTER_KINDS:
            raise SettingError(
                "kind",
                f"names an unknown adapter kind {self.kind!r}; known kinds: "
                f"{', '.join(sorted(ADAPTER_KINDS))}",
            )
        given = {k: v for k, v in self.sizes().items() if v is not None}
        if len(given) > 1:
            raise ConfigError(
                f"give at most one adapter size, got {', '.join(f'{k}={v}' for k, v in given.items())}: "
                "groups= (groups per layer), group_size= (channels per group) and ratio= "
                "(parameters against ssa) are three spellings of the same choice"
            )
        if given and not ADAPTER_KINDS[self.kind].sized:
            raise ConfigError(
                f"kind {self.kind!r} takes no size, got {', '.join(given)}; sizes apply to 'apgc'"
            )
        if self.ratio is not None and float(2 * self.ratio) != int(2 * self.ratio):
            raise ConfigError(
                f"ratio={self.ratio} gives a group size of {2 * self.ratio}; "
                "the group size (2 x ratio) must be a whole number"
            )
        if self.num_classes > 1 and self.kind != "cbn":
            raise ConfigError(f"num_classes={self.num_classes} applies to kind 'cbn' only")
        for key, width in (self.widths or {}).items():
            if not isinstance(width, int) or isinstance(width, bool) or width < 1:
                raise ConfigError(f"widths[{key!r}] must be a positive channel count, got {width!r}")
        for pattern in (self.targets or []) + list(self.exclude) + list(self.widths or {}):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"target pattern {pattern!r} is not a valid regex: {exc}") from exc

    def sizes(self) -> dict[str, float | None]:
        """The three size fields, by name."""
        return {"groups": self.groups, "group_size": self.group_size, "ratio": self.ratio}

    def group_size_for(self, channels: int, site: str) -> int | None:
        """Channels per group at a site of `channels` channels (None for per-channel kinds)."""
        if not ADAPTER_KINDS[self.kind].pointwise:
            return None
        if not ADAPTER_KINDS[self.kind].sized:
            return channels
        if self.groups is not None:
            if channels % self.groups:
                raise SiteError(
                    f"groups={self.groups} does not divide the {channels} channels of layer "
                    f"{site!r}; pick a group count that divides every layer's channels, or use "
                    "ratio= / group_size= for a size that scales with the layer"
                )
            return channels // self.groups
        size = self.group_size if self.group_size is not None else None
        if size is None:
            size = int(2 * (self.ratio if self.ratio is not None else DEFAULT_RATIO))
        if channels % size:
            raise SiteError(
                f"group size {size} does not divide the {channels} channels of layer {site!r}; "
                "choose a smaller size, or exclude that layer with exclude="
            )
        return size
