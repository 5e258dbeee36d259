"""Adapters as one small `.safetensors` file: tensors, config and a fingerprint of the base.

No pickle anywhere: tensors are safetensors, the config and the site list are JSON in the
file's metadata. Loading injects per the saved config into a fresh base, refuses a base
whose sites differ (naming the first difference), then copies the tensors in.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gan_adapters.config import AdapterConfig
from gan_adapters.errors import ConfigError, GanAdaptersError, MismatchError
from gan_adapters.inject import insert_adapters, require_state, slots_of
from gan_adapters.manage import delete_adapter
from gan_adapters.sites import find_norm_sites

FORMAT = "gan-adapters"
FORMAT_VERSION = "1"


def adapter_tensors(model: nn.Module, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
    """One adapter's tensors keyed `site_id/parameter` (the file's keys)."""
    state = require_state(model)
    name = adapter_name or state.active
    if name not in state.adapters:
        raise MismatchError(f"no adapter named {name!r}; this model has: {', '.join(state.adapters)}")
    return {
        f"{slot.site_id}/{key}": value
        for slot in slots_of(model)
        if name in slot
        for key, value in slot[name].state_dict().items()
    }


def write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


EXTRA_PREFIX = "extra/"


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
    tensors = adapter_tensors(model, name) | {EXTRA_PREFIX + k: v for k, v in (extras or {}).items()}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    record = state.adapters[name]
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
    refusing anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise GanAdaptersError(f"no adapter file at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = [key for key in handle.keys() if key.startswith(prefix)]  # noqa: SIM118 - not a dict
            tensors = {key: handle.get_tensor(key) for key in keys}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanAdaptersError(f"{path} is not a readable .safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise GanAdaptersError(f"{path} is a safetensors file but not a gan-adapters adapter file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise GanAdaptersError(
            f"{path} has adapter format version {metadata.get('format_version')}; "
            f"this version of gan-adapters reads version {FORMAT_VERSION}"
        )
    return metadata, tensors


def read_extras(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The extra tensors saved with an adapter (see `save_adapters`)."""
    _, tensors = read_adapter_file(path, prefix=EXTRA_PREFIX)
    return {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items()}


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
    difference is named in a `MismatchError`. Returns the model to use (see `inject`).
    """
    path = Path(path)
    metadata, tensors = read_adapter_file(path)
    try:
        config = AdapterConfig.from_json(metadata["config"])
        saved_sites = json.loads(metadata["sites"])
    except (KeyError, json.JSONDecodeError, ConfigError) as exc:
        raise GanAdaptersError(f"{path} has a damaged adapter config: {exc}") from exc
    name = adapter_name or metadata.get("adapter_name", "default")
    discovery = find_norm_sites(
        model, config.targets, config.exclude, method=config.method,
        example_inputs=example_inputs, example_kwargs=example_kwargs,
    )  # fmt: skip
    _check_fingerprint(saved_sites, [site.fingerprint() for site in discovery.sites], path)
    root = insert_adapters(model, config, discovery, name)
    try:
        own = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
        copy_adapter_tensors(adapter_tensors(root, name), own, path)
    except MismatchError:
        delete_adapter(root, name)
        raise
    return root


def copy_adapter_tensors(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], path: Path
) -> None:
    """Copy `found` into the adapter tensors `expected` (same keys, same shapes, else refused)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise MismatchError(
            f"{path} does not hold the tensors its config implies: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    with torch.no_grad():
        for key, target in expected.items():
            if target.shape != found[key].shape:
                raise MismatchError(
                    f"{path}: tensor {key!r} has shape {tuple(found[key].shape)}, the adapter "
                    f"expects {tuple(target.shape)}"
                )
            target.copy_(found[key])
