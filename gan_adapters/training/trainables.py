"""What a run trains, by its `method`: the adapters (the project's method), or every parameter of
the generator (full fine-tuning, the baseline every table of the field compares against).

Everything that handles the trained tensors goes through here: making them trainable, the
optimiser's group, the checkpoint, and the result file. A full fine-tuning result is the
generator's floating-point state as safetensors (format `gan-adapters-full`, the learned latents
and class embedding under `extra/` as in an adapter file), so it loads without pickle too.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gan_adapters.errors import AdapterFileError
from gan_adapters.files import write_atomically
from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.surgery import (
    adapter_tensors,
    copy_adapter_tensors,
    inject,
    save_adapters,
    trainable_parameters,
)
from gan_adapters.training.embedding import replace_class_embedding
from gan_adapters.training.recipe import TrainConfig

FULL_FORMAT = "gan-adapters-full"
EXTRA = "extra/"


def prepare_trainables(config: TrainConfig, bundle: GeneratorBundle) -> None:
    """Adapters injected (the rest frozen), or every generator parameter set to train."""
    if config.method == "full":
        bundle.model.requires_grad_(True)
    else:
        bundle.model = inject(bundle.model, config=config.adapter, example_inputs=bundle.example_inputs())


def trained_parameters(config: TrainConfig, model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates (a learned class embedding aside, which has its own group)."""
    return list(model.parameters()) if config.method == "full" else list(trainable_parameters(model))


def trained_tensors(config: TrainConfig, model: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint keeps of the generator: its adapters, or its whole floating-point state."""
    if config.method == "full":
        return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    return adapter_tensors(model)


def restore_trained(
    config: TrainConfig, model: nn.Module, saved: dict[str, torch.Tensor], path: Path
) -> None:
    """Copy a checkpoint's `trained_tensors` back, refusing a mismatch before anything changes."""
    copy_adapter_tensors(trained_tensors(config, model), saved, path)


def save_result(config: TrainConfig, model: nn.Module, path: Path, extras: dict[str, torch.Tensor]) -> Path:
    """The run's shareable file: the adapter file, or the fine-tuned generator's state."""
    if config.method != "full":
        return save_adapters(model, path, extras=extras)
    tensors = trained_tensors(config, model) | {EXTRA + k: v for k, v in extras.items()}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    metadata = {"format": FULL_FORMAT, "base_class": type(model).__name__, "config": config.to_json()}
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def is_full_weights(path: Path) -> bool:
    """Whether a result file holds a fully fine-tuned generator (not adapters); a file that is not
    safetensors at all is left to the adapter reader, which says what is wrong with it."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == FULL_FORMAT
    except (SafetensorError, OSError):
        return False


def load_full_weights(bundle: GeneratorBundle, path: Path) -> dict[str, torch.Tensor]:
    """Load a fully fine-tuned generator's state into its base; returns the extras."""
    with safe_open(str(path), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    extras = {k[len(EXTRA) :]: v.float() for k, v in tensors.items() if k.startswith(EXTRA)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(EXTRA)}
    if "class_embedding" in extras and bundle.class_embedding:
        replace_class_embedding(bundle, extras["class_embedding"])  # its key, as the run trained it
    own = bundle.model.state_dict()
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise AdapterFileError(f"{path} holds weights {unknown[:3]} that {bundle.name} does not have")
    bundle.model.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()}, strict=False)
    return extras


def trained_count(config: TrainConfig, model: nn.Module) -> int:
    """How many values the method trains in the generator."""
    return sum(p.numel() for p in trained_parameters(config, model))
