"""The exceptions gan-adapters raises: one base type, a subtype per kind of mistake.

Every error the library raises on purpose derives from `GanAdaptersError` (the CLI prints
those as one line, never a traceback), and each also derives from the builtin type a caller
would naturally catch (ValueError for bad input, RuntimeError for a bad state).
"""

from __future__ import annotations


class GanAdaptersError(Exception):
    """Base of every error this library raises on purpose; catch it to catch them all."""


class ConfigError(GanAdaptersError, ValueError):
    """A configuration or recipe is invalid (unknown kind, conflicting sizes, bad option)."""


class SiteError(GanAdaptersError, ValueError):
    """A site cannot take the requested adapter, or no site was found at all."""


class MismatchError(GanAdaptersError, ValueError):
    """Saved adapters do not fit the base model they are being loaded into."""


class AdapterFileError(GanAdaptersError, ValueError):
    """A file is not a readable gan-adapters adapter file (damaged, foreign or too new)."""


class AdapterStateError(GanAdaptersError, RuntimeError):
    """An operation does not fit the model's current adapter state (no adapters, bad labels...)."""


class UnknownAdapterError(AdapterStateError, KeyError):
    """No adapter of that name on the model; the message lists the names it has."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no adapter named {name!r}; this model has: {', '.join(known) or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CheckpointError(GanAdaptersError, ValueError):
    """A checkpoint or weights file is missing, damaged, or not what was expected."""


class GeneratorError(GanAdaptersError, ValueError):
    """A generator cannot be built as asked (unknown name, missing package or weights)."""


class DataError(GanAdaptersError, ValueError):
    """The image folder cannot give what the run asks for."""


class RunFolderError(GanAdaptersError, ValueError):
    """The output folder cannot be used as asked (a run already there, nothing to resume...)."""


class TrainingDivergedError(GanAdaptersError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


class BackboneUnavailableError(GanAdaptersError, RuntimeError):
    """A pretrained network's weights or package are missing; the message says how to get them."""


class SettingError(ConfigError):
    """One configuration value breaks its declaration (`settings.py`); `key` names it, and
    `located` or `as_flag` say it in the terms the user typed (a recipe key, a flag)."""

    def __init__(self, key: str, problem: str, where: str | None = None) -> None:
        self.key, self.problem, self.where = key, problem, where
        super().__init__(f"{where}: {key} {problem}" if where else f"{key} {problem}")

    def located(self, where: str) -> SettingError:
        """The same refusal, said of a key in a file ('recipe.toml')."""
        return SettingError(self.key, self.problem, where)

    def as_flag(self, flag: str) -> ConfigError:
        """The same refusal, said of a command-line flag ('--steps')."""
        return ConfigError(f"{flag} {self.problem}")


class RunInterruptedError(GanAdaptersError, RuntimeError):
    """A run stopped by Ctrl-C at a safe point; `step` is what its checkpoint holds."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step
