"""Adapters as one small `.safetensors` file: tensors, config and a fingerprint of the base.

No pickle anywhere: tensors are safetensors, the config and the site list are JSON in the
file's metadata. Every field is validated before the model is touched; loading builds the
saved adapters for a fresh base, refuses a base whose sites differ (naming the first
difference) or tensors that do not fit, and only then changes the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gan_adapters.errors import AdapterFileError, ConfigError, MismatchError, SiteError
from gan_adapters.files import write_atomically
from gan_adapters.surgery.base import Adapter
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.inject import build_adapter, check_adapter_name, insert_adapters
from gan_adapters.surgery.sites import find_norm_sites
from gan_adapters.surgery.state import require_state, slots_of

FORMAT = "gan-adapters"
FORMAT_VERSION = "1"
EXTRA_PREFIX = "extra/"


def adapter_tensors(model: nn.Module, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
    """One adapter's tensors keyed `site_id/parameter` (the file's keys)."""
    state = require_state(model)
    name = adapter_name or state.active
    state.record(name)
    return {
        f"{slot.site_id}/{key}": value
        for slot in slots_of(model)
        if name in slot
        for key, value in slot[name].state_dict().items()
    }


def save_adapters(
    model: nn.Module,
    path: str | os.PathLike,
    adapter_name: str | None = None,
    extras: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save one adapter (the active one by default) to a `.safetensors` file; returns its path.

    `extras` are further tensors that belong with the domain (the trainer stores the learned
    per-image latents and class embedding there), kept under `extra/<name>`.
    """
    state = require_state(model)
    name = adapter_name or state.active
    record = state.record(name)
    tensors = adapter_tensors(model, name) | {EXTRA_PREFIX + k: v for k, v in (extras or {}).items()}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "adapter_name": name,
        "config": record.config.to_json(),
        "sites": json.dumps([site.fingerprint() for site in record.sites]),
        "base_class": type(model).__name__,
        "torch_version": torch.__version__,
    }
    path = Path(path)
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def read_adapter_file(
    path: str | os.PathLike, prefix: str = ""
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors (those whose key starts with `prefix`) of an adapter file,
    refusing anything that is not one with an `AdapterFileError`."""
    path = Path(path)
    if not path.is_file():
        raise AdapterFileError(f"no adapter file at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = [key for key in handle.keys() if key.startswith(prefix)]  # noqa: SIM118 - not a dict
            tensors = {key: handle.get_tensor(key) for key in keys}
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise AdapterFileError(f"{path} is not a readable .safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise AdapterFileError(f"{path} is a safetensors file but not a gan-adapters adapter file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise AdapterFileError(
            f"{path} has adapter format version {metadata.get('format_version')!r}; "
            f"this version of gan-adapters reads version {FORMAT_VERSION}"
        )
    return metadata, tensors


def read_extras(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The extra tensors saved with an adapter (see `save_adapters`), floats in float32 whatever
    they were stored in (fp16 halves a shared file)."""
    _, tensors = read_adapter_file(path, prefix=EXTRA_PREFIX)
    return {k[len(EXTRA_PREFIX) :]: v.float() if v.is_floating_point() else v for k, v in tensors.items()}


def _is_fingerprint(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and type(entry[1]) is int
        and entry[1] > 0
        and isinstance(entry[2], str)
    )


def read_adapter_metadata(metadata: dict[str, str], path: Path) -> tuple[AdapterConfig, list[list], str]:
    """The config, site fingerprints and adapter name of a file's metadata, all validated."""
    try:
        config = AdapterConfig.from_json(metadata["config"])
    except KeyError:
        raise AdapterFileError(f"{path} has no adapter config in its metadata") from None
    except ConfigError as exc:
        raise AdapterFileError(f"{path} has a damaged adapter config: {exc}") from exc
    try:
        sites = json.loads(metadata.get("sites", ""))
    except json.JSONDecodeError as exc:
        raise AdapterFileError(f"{path} has a damaged site list: {exc}") from exc
    if not isinstance(sites, list) or not sites or not all(_is_fingerprint(e) for e in sites):
        raise AdapterFileError(
            f"{path} has a damaged site list: expected a non-empty list of [site, channels, class]"
        )
    return config, sites, metadata.get("adapter_name", "default")


def _describe(entry: list) -> str:
    site, channels, cls = entry
    return f"{site!r} ({cls}, {channels} channels)"


def _check_fingerprint(saved: list[list], found: list[list], path: Path) -> None:
    for index, (want, have) in enumerate(zip(saved, found, strict=False)):
        if want != have:
            raise MismatchError(
                f"{path} does not fit this model: site #{index} is {_describe(want)} in the file "
                f"but {_describe(have)} in the model"
            )
    if len(saved) != len(found):
        extra = found[len(saved)] if len(found) > len(saved) else saved[len(found)]
        side = "the model" if len(found) > len(saved) else "the file"
        raise MismatchError(
            f"{path} does not fit this model: the file has {len(saved)} sites, the model "
            f"{len(found)}; the first unmatched one, in {side}, is {_describe(extra)}"
        )


def load_adapters(
    model: nn.Module,
    path: str | os.PathLike,
    adapter_name: str | None = None,
    *,
    example_inputs: tuple | None = None,
    example_kwargs: dict | None = None,
) -> nn.Module:
    """Inject the adapter saved at `path` into a base model and load its tensors.

    The base must have exactly the saved sites (paths, classes, channel counts); the first
    difference is named in a `MismatchError`. A refused file leaves the model untouched.
    Returns the model to use (see `inject`).
    """
    path = Path(path)
    metadata, tensors = read_adapter_file(path)
    config, saved_sites, saved_name = read_adapter_metadata(metadata, path)
    name = adapter_name or saved_name
    try:
        check_adapter_name(model, name)
    except ConfigError as exc:
        raise AdapterFileError(f"{path}: {exc}") from exc
    try:
        discovery = find_norm_sites(
            model,
            config.targets,
            config.exclude,
            route=config.route,
            example_inputs=example_inputs,
            example_kwargs=example_kwargs,
            widths=config.widths,
        )
    except SiteError as exc:  # the file's sites cannot even be looked for here: another generator
        raise MismatchError(f"{path} does not fit {type(model).__name__}: {exc}") from exc
    _check_fingerprint(saved_sites, [site.fingerprint() for site in discovery.sites], path)
    adapters = {site.id: build_adapter(config, site) for site in discovery.sites}
    own = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    copy_adapter_tensors(adapter_state(adapters), own, path)
    return insert_adapters(model, config, discovery, name, adapters=adapters)


def adapter_state(adapters: dict[str, Adapter]) -> dict[str, torch.Tensor]:
    """The tensors of adapters by site id, keyed as in the file."""
    return {
        f"{site_id}/{key}": value
        for site_id, adapter in adapters.items()
        for key, value in adapter.state_dict().items()
    }


def copy_adapter_tensors(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], path: Path
) -> None:
    """Copy `found` into the adapter tensors `expected`: same keys, shapes and float dtypes, and
    every value finite, else a MismatchError before anything is copied."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise MismatchError(
            f"{path} does not hold the tensors its config implies: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    for key, target in expected.items():
        value = found[key]
        if target.shape != value.shape:
            raise MismatchError(
                f"{path}: tensor {key!r} has shape {tuple(value.shape)}, the adapter "
                f"expects {tuple(target.shape)}"
            )
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise MismatchError(f"{path}: tensor {key!r} is not finite floating-point data ({value.dtype})")
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(found[key])
