"""Shared fixtures: real third-party generators (CPU, small) and deterministic inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_adapters.generators.registry import GeneratorBundle, load_generator


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _registries_restored():
    """A kind, norm class or generator registered by one test never leaks into the next."""
    from gan_adapters.generators.registry import GENERATORS
    from gan_adapters.surgery import ADAPTER_KINDS
    from gan_adapters.surgery.norms import NORM_CLASSES

    saved = [(registry, dict(registry)) for registry in (ADAPTER_KINDS, NORM_CLASSES, GENERATORS)]
    yield
    for registry, content in saved:
        registry.clear()
        registry.update(content)


@pytest.fixture
def dcgan() -> GeneratorBundle:
    """gan-face-generate's DCGAN with its shipped, pretrained weights."""
    return load_generator("dcgan-faces")


def small_biggan_deep() -> nn.Module:
    """pytorch-pretrained-biggan's BigGAN-deep at a tiny width: all 41 BigGANBatchNorm layers."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    model = BigGAN(BigGANConfig(output_dim=128, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=10))
    nn.init.ones_(model.generator.bn.weight)  # uninitialised until a checkpoint loads
    nn.init.zeros_(model.generator.bn.bias)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_means"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_vars"):
                buffer.uniform_(0.5, 1.5)
        # Spectral norm starts from random singular vectors; a few power iterations settle them.
        model.train()
        for _ in range(3):
            model(*biggan_inputs())
    return model.eval()


@pytest.fixture
def biggan_deep() -> nn.Module:
    return small_biggan_deep()


def biggan_inputs(batch: int = 2, label: int = 3) -> tuple:
    z = torch.randn(batch, 8)
    return z, nn.functional.one_hot(torch.full((batch,), label), 10).float(), 0.5


@pytest.fixture
def stylegan2() -> GeneratorBundle:
    """lucidrains' StyleGAN2 (PyPI stylegan2-pytorch), 32 px, random weights."""
    return load_generator("stylegan2-lucidrains", image_size=32, latent_dim=16, network_capacity=2)
