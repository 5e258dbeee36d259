"""`AdapterConfig`: what to inject and where, as a dataclass that round-trips to JSON and TOML.

Its fields are what every kind shares (where, how sites are found, folding). The settings a kind
owns (apgc's size, cbn's class count, a registered kind's own) are that kind's `KindSettings`,
held in `settings` and read and written flat beside the shared fields: `AdapterConfig(kind="apgc",
ratio=8)`, `ratio = 8` in a recipe or an adapter file, `--ratio 8` on the command line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Self

from gan_adapters.errors import ConfigError, SettingError
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting, type_problem
from gan_adapters.surgery.base import ADAPTER_KINDS, Adapter, KindSettings
from gan_adapters.surgery.paths import FOLD_POLICIES
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

ROUTES = ("auto", "fx", "export", "module")
"""How sites are found: `auto` tries torch.fx, then torch.export, then module matching."""


@dataclass(init=False)
class AdapterConfig(Serialisable):
    """Everything that decides which adapters `inject` builds, and where.

    The kind's own settings are given by name beside these fields (`groups`, `group_size` or
    `ratio` for `apgc`, `bias` for `apc`/`apgc`, `num_classes` for `cbn`) and validated by the
    kind; `settings` holds them. `targets` and `exclude` hold class names or regular
    expressions over module paths.
    """

    config_name = "adapter config"

    kind: str = setting("apgc", flag=("--kind", "-k"))
    """Adapter kind (a registered one: ssa, cbn, apc, apgc, ...)."""
    targets: list[str] | None = setting(None, flag=("--target", "-t"))
    """Layers to adapt instead of the normalisation layers: a class name or a regex over module paths
    (repeatable), e.g. -t Conv2DMod -x to_rgb (StyleGAN2: its 3-channel to_rgb convs are Conv2DMod too)."""
    exclude: list[str] = setting(default_factory=list, flag=("--exclude", "-x"))
    """Class name or path regex to leave alone (repeatable)."""
    conditional: bool = setting(False, flag="--conditional/--static")
    """Condition adapters on the layer's class condition."""
    train_norm: bool = setting(False, flag="--train-norm/--frozen-norm")
    """Also train the normalisation layers' own affine."""
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
    settings: KindSettings = dataclasses.field(default_factory=KindSettings)
    """The kind's own settings (its `KindSettings`), given flat by name everywhere else."""

    def __init__(self, kind: str = "apgc", settings: KindSettings | None = None, **values: Any) -> None:
        shared = [f for f in dataclasses.fields(AdapterConfig) if f.name not in ("kind", "settings")]
        for field in shared:
            default = field.default
            if field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            setattr(self, field.name, values.pop(field.name, default))
        self.kind = kind
        self.settings = _kind_settings(kind, settings, values)
        self.__post_init__()

    def __post_init__(self) -> None:
        if isinstance(self.fold, bool):  # files written before fold was a policy
            self.fold = "exact" if self.fold else "never"
        super().__post_init__()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from flat data: the shared fields and the kind's own settings side by side."""
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.config_name} must be a table of keys, got {type(data).__name__}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Flat data: the shared fields, then the kind's own settings (the format files keep)."""
        shared = super().to_dict()
        return {k: v for k, v in shared.items() if k != "settings"} | self.settings.to_dict()

    @classmethod
    def flat_fields(cls) -> dict[str, tuple[type, dataclasses.Field]]:
        """Every registered kind's own settings, by name, with the class declaring each (the first
        kind to declare a name wins): what a flat table or the command line may give beside ours."""
        found: dict[str, tuple[type, dataclasses.Field]] = {}
        for kind in ADAPTER_KINDS.values():
            for field in dataclasses.fields(kind.settings):
                found.setdefault(field.name, (kind.settings, field))
        return found

    def validate(self) -> None:
        """Rules between shared fields (the kind's settings validated themselves)."""
        for key, width in (self.widths or {}).items():
            if not isinstance(width, int) or isinstance(width, bool) or width < 1:
                raise ConfigError(f"widths[{key!r}] must be a positive channel count, got {width!r}")
        for pattern in (self.targets or []) + list(self.exclude) + list(self.widths or {}):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"target pattern {pattern!r} is not a valid regex: {exc}") from exc

    @property
    def adapter_class(self) -> type[Adapter]:
        """The registered class of this config's kind."""
        return ADAPTER_KINDS[self.kind]


def _registered(kind: object) -> type[Adapter]:
    if type_problem(kind, str):
        raise SettingError("kind", type_problem(kind, str))
    if kind not in ADAPTER_KINDS:
        raise SettingError(
            "kind",
            f"names an unknown adapter kind {kind!r}; known kinds: {', '.join(sorted(ADAPTER_KINDS))}",
        )
    return ADAPTER_KINDS[kind]


def _kind_settings(
    kind: object, settings: KindSettings | dict | None, values: dict[str, Any]
) -> KindSettings:
    """The kind's `KindSettings` from an instance or a table and flat values (flat values win)."""
    own_type = _registered(kind).settings
    if isinstance(settings, KindSettings):
        if type(settings) is not own_type:
            raise ConfigError(
                f"settings of type {type(settings).__name__} were given for kind {kind!r}, "
                f"which takes {own_type.__name__}"
            )
        settings = settings.to_dict()
    values = _without_stale_keys(own_type, (settings or {}) | values)
    own = sorted(f.name for f in dataclasses.fields(own_type))
    others = AdapterConfig.flat_fields()
    unknown = sorted(k for k in values if k not in own and k not in others)
    if unknown:
        shared = [f.name for f in dataclasses.fields(AdapterConfig) if f.name != "settings"]
        raise ConfigError(
            f"unknown adapter config keys: {', '.join(unknown)} (known: {', '.join(shared)}; "
            f"kind {kind!r} also takes: {', '.join(own) or 'nothing more'})"
        )
    foreign = sorted(k for k in values if k not in own)
    if foreign:
        where = "; ".join(f"`{k}` belongs to {_owners_of(k)}" for k in foreign)
        raise ConfigError(
            f"kind {kind!r} takes no {', '.join(f'`{k}`' for k in foreign)} ({where}); "
            f"its own settings: {', '.join(own) or 'none'}"
        )
    return own_type.from_dict(values)


def _owners_of(name: str) -> str:
    kinds = [
        k for k, cls in ADAPTER_KINDS.items() if name in {f.name for f in dataclasses.fields(cls.settings)}
    ]
    return "kind " + " and ".join(repr(k) for k in kinds)


def _without_stale_keys(own_type: type[KindSettings], values: dict[str, Any]) -> dict[str, Any]:
    """Drop another kind's settings left at their default: files written before kinds owned their
    settings list every kind's (`groups: null` in an ssa file)."""
    own = {f.name for f in dataclasses.fields(own_type)}
    defaults = {name: field.default for name, (_, field) in AdapterConfig.flat_fields().items()}
    return {k: v for k, v in values.items() if k in own or k not in defaults or v != defaults[k]}
