"""BigGAN-deep of `pytorch-pretrained-biggan` (ImageNet, 128/256/512 px; downloads once)."""

from __future__ import annotations

import torch
from torch import nn

from gan_adapters.errors import GeneratorError
from gan_adapters.generators.registry import GeneratorBundle, register_generator


def _settle_spectral_norm(model: nn.Module, truncation: float, passes: int = 3) -> None:
    """Random spectral-norm layers start from random singular vectors; a few train-mode passes
    of power iteration make the random generator's outputs finite and stable."""
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            z = torch.randn(2, model.config.z_dim)
            model(z, torch.eye(model.config.num_classes)[:2], truncation)
    model.eval()


def _build(resolution: int, random_weights: bool, truncation: float, config: dict) -> GeneratorBundle:
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    name = f"biggan-deep-{resolution}"
    if random_weights:
        if resolution != 128:
            raise GeneratorError(f"random weights are offered for biggan-deep-128 only, not {name}")
        # BigGANConfig's defaults are the 128 px model; options (e.g. channel_width=4) shrink it.
        model = BigGAN(BigGANConfig(**config))
        # Its unconditional output BN starts uninitialised (a checkpoint fills it).
        nn.init.ones_(model.generator.bn.weight)
        nn.init.zeros_(model.generator.bn.bias)
        _settle_spectral_norm(model, truncation)
    else:
        try:
            model = BigGAN.from_pretrained(name)
        except Exception as exc:
            raise GeneratorError(
                f"could not download {name} ({type(exc).__name__}: {exc}); it needs the "
                "internet once (cached under ~/.pytorch_pretrained_biggan), or use "
                "random_weights for an offline smoke run"
            ) from exc
    classes = model.config.num_classes

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, nn.functional.one_hot(labels, classes).float(), truncation

    return GeneratorBundle(
        name, model.eval(), (model.config.z_dim,), resolution, classes, inputs, "embeddings"
    )


_DESCRIPTION = "BigGAN-deep {} px, ImageNet, class-conditional (pytorch-pretrained-biggan; downloads once)"


@register_generator("biggan-deep-128", _DESCRIPTION.format(128), needs_download=True)
def biggan_deep_128(random_weights: bool = False, truncation: float = 0.4, **config) -> GeneratorBundle:
    """BigGAN-deep 128 px (`random_weights=True` builds it offline, options shrink it)."""
    return _build(128, random_weights, truncation, config)


@register_generator("biggan-deep-256", _DESCRIPTION.format(256), needs_download=True)
def biggan_deep_256(random_weights: bool = False, truncation: float = 0.4, **config) -> GeneratorBundle:
    """BigGAN-deep 256 px."""
    return _build(256, random_weights, truncation, config)


@register_generator("biggan-deep-512", _DESCRIPTION.format(512), needs_download=True)
def biggan_deep_512(random_weights: bool = False, truncation: float = 0.4, **config) -> GeneratorBundle:
    """BigGAN-deep 512 px."""
    return _build(512, random_weights, truncation, config)
