"""The project's own class-conditional source models: their architectures, weight files and names.

An architecture is a (config, generator, discriminator) triple that `gan-adapters pretrain`
trains; it joins with one decorator on its discriminator class (`@register_source("name", ...)`).
A trained generator ships as fp16 safetensors whose metadata holds the architecture's name, its
config and a model card as JSON, so it loads without pickle and describes itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gan_adapters.errors import CheckpointError, ConfigError, GeneratorError
from gan_adapters.files import read_weights, write_atomically
from gan_adapters.generators.registry import GeneratorBundle, register_generator

WEIGHTS = Path(__file__).parent / "weights"
"""Where shipped source weights live inside the package."""


@dataclass(frozen=True)
class SourceArchitecture:
    """What pretraining builds: a config dataclass and the two networks made from it."""

    config: type
    generator: type[nn.Module]
    discriminator: type[nn.Module]


SOURCE_ARCHITECTURES: dict[str, SourceArchitecture] = {}
"""Trainable source architectures by name; extend with `register_source`."""


def register_source(name: str, *, config: type, generator: type[nn.Module]) -> Callable[[type], type]:
    """Class decorator for a discriminator: `name` pretrains `generator(config)` against it."""

    def add(discriminator: type[nn.Module]) -> type[nn.Module]:
        SOURCE_ARCHITECTURES[name] = SourceArchitecture(config, generator, discriminator)
        return discriminator

    return add


def source_architecture(name: str) -> SourceArchitecture:
    """The registered architecture `name`, or a GeneratorError listing the known ones."""
    if name not in SOURCE_ARCHITECTURES:
        raise GeneratorError(
            f"unknown source architecture {name!r}; known: {', '.join(SOURCE_ARCHITECTURES)}"
        )
    return SOURCE_ARCHITECTURES[name]


def architecture_of(generator: nn.Module) -> str:
    """The registered name of a source generator's class."""
    for name, architecture in SOURCE_ARCHITECTURES.items():
        if type(generator) is architecture.generator:
            return name
    raise GeneratorError(f"{type(generator).__name__} is not a registered source architecture")


def save_generator_file(generator: nn.Module, path: Path, card: dict | None = None) -> Path:
    """The generator as fp16 safetensors; its architecture, config and model card in the metadata."""
    tensors = {
        k: v.detach().half().contiguous().cpu() if v.is_floating_point() else v.cpu()
        for k, v in generator.state_dict().items()
    }
    metadata = {
        "architecture": architecture_of(generator),
        "config": generator.config.to_json(),
        "card": json.dumps(card or {}),
    }
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_generator_file(path: str | Path) -> tuple[nn.Module, dict]:
    """A generator saved by `save_generator_file`, in float32 and eval mode, and its model card."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        architecture = source_architecture(metadata.get("architecture", "biggan"))
        config = architecture.config.from_json(metadata["config"])
        card = json.loads(metadata.get("card", "{}"))
    except (SafetensorError, OSError, KeyError, ConfigError, GeneratorError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a source-model weight file of this project: {exc}") from exc
    generator = architecture.generator(config)
    generator.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in read_weights(path).items()}
    )
    return generator.eval(), card


def source_bundle(name: str, generator: nn.Module) -> GeneratorBundle:
    """A source generator as a bundle: z (N, z_dim) and class labels (class 0 when none given)."""

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, labels

    config = generator.config
    return GeneratorBundle(
        name, generator, (config.z_dim,), config.resolution, config.num_classes, inputs, "shared"
    )


def _shipped_source(name: str, weights: str | Path | None, how_to_train: str) -> GeneratorBundle:
    path = Path(weights) if weights is not None else WEIGHTS / f"{name}.safetensors"
    if not path.is_file():
        raise GeneratorError(
            f"no {name} weights at {path}: this release does not ship them. Train them with "
            f"`{how_to_train}` (docs/zoo.md) and pass model_options weights=OUT/generator-ema.safetensors"
        )
    generator, _ = load_generator_file(path)
    return source_bundle(name, generator)


@register_generator(
    "cdcgan-emoji-32-projected",
    "class-conditional DCGAN, 32 px, pretrained against a projected discriminator on 96 Noto emoji "
    "subgroups: the default emoji source (ships inside)",
)
def cdcgan_emoji_32_projected(weights: str | Path | None = None, **_) -> GeneratorBundle:
    """z (N, 128) and emoji-subgroup labels -> 32 px emoji; the architecture of `cdcgan-emoji-32`,
    trained against frozen EfficientNet-Lite0 features (docs/zoo.md has its measures)."""
    how = (
        "gan-adapters pretrain data/emoji-32-train.safetensors --discriminator projected "
        "--out runs/source/projected-32 --minutes 120"
    )
    return _shipped_source("cdcgan-emoji-32-projected", weights, how)


@register_generator(
    "cdcgan-emoji-32",
    "class-conditional DCGAN, 32 px, conditional BN, pretrained on 96 Noto emoji subgroups against its own "
    "discriminator (the first source; ships inside)",
)
def cdcgan_emoji_32(weights: str | Path | None = None, **_) -> GeneratorBundle:
    """z (N, 128) and emoji-subgroup labels -> 32 px emoji; 3 conditional BN sites and one BN."""
    how = "gan-adapters pretrain data/emoji-32-train.safetensors --out runs/cdcgan-emoji --minutes 120"
    return _shipped_source("cdcgan-emoji-32", weights, how)


@register_generator(
    "biggan-emoji-64",
    "BigGAN 64 px with class-conditional BN, pretrained on Noto emoji subgroups (weights=PATH until shipped)",
)
def biggan_emoji_64(weights: str | Path | None = None, **_) -> GeneratorBundle:
    """z (N, z_dim) and emoji-subgroup labels -> 64 px emoji; 8 conditional BN sites."""
    how = (
        "gan-adapters pretrain data/emoji-64-train.safetensors.gz --architecture biggan --resolution 64 "
        "--out runs/biggan-emoji"
    )
    return _shipped_source("biggan-emoji-64", weights, how)
