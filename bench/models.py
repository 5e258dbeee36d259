"""Generators the benchmarks build (random weights, offline), named in recipes as bench/models.py:NAME."""

from __future__ import annotations

import torch

from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator
from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.generators.sources import source_bundle


def biggan_128(resolution: int = 128, ch: int = 96, num_classes: int = 1000, **_) -> GeneratorBundle:
    """BigGAN-128's shape (ch=96, 1000 classes, class-conditional BN, self-attention), random weights:
    what a step costs does not depend on what the weights learned."""
    torch.manual_seed(0)
    config = BigGANConfig(resolution=resolution, ch=ch, num_classes=num_classes)
    return source_bundle("biggan-128-random", BigGANGenerator(config).eval())
