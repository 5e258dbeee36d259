"""`Serialisable`: the dict / JSON / TOML round trip every configuration dataclass shares."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Self

from gan_adapters.errors import ConfigError
from gan_adapters.files import read_toml


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


class Serialisable:
    """Mixin for dataclasses: `to_dict`/`from_dict`, `to_json`/`from_json`, `to_toml`/`from_toml`.

    `from_dict` refuses keys the class does not have, naming them, instead of a TypeError;
    nested dataclass fields convert themselves in their own `__post_init__`.
    """

    config_name: ClassVar[str] = "config"
    """How errors name this kind of configuration ('recipe', 'adapter config', ...)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested data (JSON-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from plain data, refusing keys this version does not know."""
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.config_name} must be a table of keys, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown {cls.config_name} keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # a value of the wrong type deep inside validation
            raise ConfigError(f"invalid {cls.config_name}: {exc}") from exc

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse `to_json` output."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"the {cls.config_name} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_toml(self) -> str:
        """TOML text (None values are left out: TOML has no null)."""
        import tomli_w

        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_toml(cls, source: str | Path) -> Self:
        """Parse TOML text, or read a TOML file when given a Path."""
        if isinstance(source, Path):
            return cls.from_dict(read_toml(source, cls.config_name))
        import tomllib

        try:
            return cls.from_dict(tomllib.loads(source))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid {cls.config_name} TOML: {exc}") from exc
