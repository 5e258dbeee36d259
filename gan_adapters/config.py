"""`AdapterConfig`: what to inject and where, as a dataclass that round-trips to JSON and TOML."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_adapters.errors import ConfigError, SiteError
from gan_adapters.kinds import ADAPTER_KINDS

METHODS = ("auto", "fx", "export", "module")
DEFAULT_RATIO = 4.0
"""Parameter ratio against `ssa` used by `apgc` when no size is given (group size 8)."""


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's data, or a ConfigError naming the file and the problem."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc


def build_strictly(cls: type, data: dict[str, Any], what: str):
    """`cls(**data)` for a dataclass, naming any keys it does not have instead of a TypeError."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {what} keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**data)


@dataclass
class AdapterConfig:
    """Everything that decides which adapters `inject` builds, and where.

    Sizes (`apgc` only; give at most one): `groups` is torch's meaning, the number of
    groups per layer; `group_size` is channels per group; `ratio` is the parameter ratio
    against `ssa` (group size = 2 * ratio), which is constant over layers of any width.
    `targets` and `exclude` hold class names or regular expressions over module paths.
    """

    kind: str = "apgc"
    groups: int | None = None
    group_size: int | None = None
    ratio: float | None = None
    targets: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    bias: bool = False
    conditional: bool = False
    train_norm: bool = False
    num_classes: int = 1
    method: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in ADAPTER_KINDS:
            raise ConfigError(
                f"unknown adapter kind {self.kind!r}; known kinds: {', '.join(sorted(ADAPTER_KINDS))}"
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
        for name, value in given.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.ratio is not None and float(2 * self.ratio) != int(2 * self.ratio):
            raise ConfigError(
                f"ratio={self.ratio} gives a group size of {2 * self.ratio}; "
                "the group size (2 x ratio) must be a whole number"
            )
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {self.num_classes}")
        if self.num_classes > 1 and self.kind != "cbn":
            raise ConfigError(f"num_classes={self.num_classes} applies to kind 'cbn' only")
        for pattern in (self.targets or []) + list(self.exclude):
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

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (JSON- and TOML-safe except for None values)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterConfig:
        """Build from a dict, refusing keys this version does not know."""
        return build_strictly(cls, data, "adapter config")

    def to_json(self) -> str:
        """JSON text of the config."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AdapterConfig:
        """Parse `to_json` output."""
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        """TOML text of the config (fields left as None are omitted: TOML has no null)."""
        import tomli_w

        return tomli_w.dumps({k: v for k, v in self.to_dict().items() if v is not None})

    @classmethod
    def from_toml(cls, source: str | Path) -> AdapterConfig:
        """Parse TOML text, or a path to a TOML file."""
        text = Path(source).read_text() if isinstance(source, Path) else source
        return cls.from_dict(tomllib.loads(text))
