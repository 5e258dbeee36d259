"""The project's own BigGAN pretrained on Noto emoji: its weight file and its registry entry.

The weight file is fp16 safetensors with the architecture (`BigGANConfig`) and a model card
as JSON in its metadata, so it loads without pickle and describes itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gan_adapters.errors import CheckpointError, GeneratorError
from gan_adapters.files import read_weights, write_atomically
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator
from gan_adapters.generators.registry import GeneratorBundle, register_generator

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "biggan-emoji-64.safetensors"


def save_generator_file(
    generator: nn.Module, config: BigGANConfig, path: Path, card: dict | None = None
) -> Path:
    """The generator as fp16 safetensors, its config (and model card) in the metadata."""
    tensors = {k: v.detach().half().contiguous().cpu() if v.is_floating_point() else v.cpu()
               for k, v in generator.state_dict().items()}  # fmt: skip
    metadata = {"config": json.dumps(config.to_dict()), "card": json.dumps(card or {})}
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_generator_file(path: str | Path) -> tuple[BigGANGenerator, dict]:
    """A generator saved by `save_generator_file`, in float32 and eval mode, and its model card."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config = BigGANConfig(**json.loads(metadata["config"]))
        card = json.loads(metadata.get("card", "{}"))
    except (SafetensorError, OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a BigGAN weight file of this project: {exc}") from exc
    generator = BigGANGenerator(config)
    generator.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in read_weights(path).items()}
    )
    return generator.eval(), card


@register_generator(
    "biggan-emoji-64",
    "BigGAN 64 px with class-conditional BN, pretrained on Noto emoji subgroups (weights=PATH until shipped)",
)
def biggan_emoji_64(weights: str | Path | None = None, **_) -> GeneratorBundle:
    """z (N, z_dim) and emoji-subgroup labels -> 64 px emoji; 8 conditional BN sites."""
    path = Path(weights) if weights is not None else SHIPPED_WEIGHTS
    if not path.is_file():
        raise GeneratorError(
            f"no biggan-emoji-64 weights at {path}: this release does not ship them yet. Train them on a "
            "GPU with `gan-adapters pretrain data/emoji-64-train.safetensors.gz --out runs/biggan-emoji` "
            "(docs/zoo.md) and pass model_options weights=runs/biggan-emoji/generator-ema.safetensors"
        )
    generator, _ = load_generator_file(path)
    return biggan_bundle("biggan-emoji-64", generator)


def biggan_bundle(name: str, generator: BigGANGenerator) -> GeneratorBundle:
    """This project's BigGAN as a bundle: z (N, z_dim) and class labels (class 0 when none)."""

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, labels

    config = generator.config
    return GeneratorBundle(
        name, generator, (config.z_dim,), config.resolution, config.num_classes, inputs, "shared"
    )
