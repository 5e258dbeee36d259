"""The exceptions gan-adapters raises: one base type, a subtype per kind of mistake."""

from __future__ import annotations


class GanAdaptersError(Exception):
    """Base of every error this library raises on purpose; catch it to catch them all."""


class ConfigError(GanAdaptersError, ValueError):
    """The adapter configuration is invalid (unknown kind, conflicting sizes, bad option)."""


class SiteError(GanAdaptersError, ValueError):
    """A site cannot take the requested adapter, or no site was found at all."""


class MismatchError(GanAdaptersError, ValueError):
    """Saved adapters do not fit the base model they are being loaded into."""


class AdapterStateError(GanAdaptersError, RuntimeError):
    """An operation does not fit the model's current adapter state (no adapters, unknown name...)."""
