"""`Serialisable`: the dict / JSON / TOML round trip every configuration dataclass shares."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Self

from gan_adapters.errors import ConfigError, SettingError
from gan_adapters.files import read_toml
from gan_adapters.settings import check_settings


def _plain(value: Any) -> Any:
    """A field's value as plain data; a nested configuration through its own `to_dict`."""
    if isinstance(value, Serialisable):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return copy.deepcopy(value)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


class Serialisable:
    """Mixin for dataclasses: `to_dict`/`from_dict`, `to_json`/`from_json`, `to_toml`/`from_toml`.

    Every instance is held to its fields' declarations (`settings.check_settings`: types,
    ranges, nested tables converted) as it is made, then to the class's own `validate` (rules
    between fields). `from_dict` refuses keys the class does not have, naming them.
    """

    config_name: ClassVar[str] = "config"
    """How errors name this kind of configuration ('recipe', 'adapter config', ...)."""

    def __post_init__(self) -> None:
        check_settings(self)
        self.validate()

    def validate(self) -> None:
        """Rules between fields, after each field is checked on its own (override to add some)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested data (JSON-safe)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

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
            missing = [
                f.name
                for f in dataclasses.fields(cls)
                if f.name not in data
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ]
            if missing:
                raise ConfigError(f"the {cls.config_name} needs {', '.join(missing)}") from exc
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
            try:
                return cls.from_dict(read_toml(source, cls.config_name))
            except SettingError as exc:
                raise exc.located(str(source)) from exc
        import tomllib

        try:
            return cls.from_dict(tomllib.loads(source))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid {cls.config_name} TOML: {exc}") from exc
