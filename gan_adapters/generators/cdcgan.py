"""A lean class-conditional DCGAN: BigGAN's conditioning in a generator small enough to pretrain on a CPU.

Generator: z -> linear -> 4x4, then per block a class-conditional BN (gain 1 + f(y), bias g(y),
y = [shared class embedding, z chunk] with hierarchical z), ReLU, 2x nearest upsampling and one
3x3 conv; a plain BN, ReLU, 3x3 conv and tanh at the end. It reuses BigGAN's
`ConditionalBatchNorm2d`, so adapters find and fold into the same sites. Discriminator: strided
4x4 convs with spectral norm and a class projection (Miyato & Koyama 2018). At 32 px with ch=32
a hinge-loss step of batch 64 takes about a quarter of a second on 2 CPU cores
(docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from gan_adapters.generators.biggan import ConditionalBatchNorm2d
from gan_adapters.generators.sources import register_source
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting

WIDTHS = {
    # resolution: channel multipliers of the 4x4 input, then of each up-block's output
    32: (4, 4, 2, 1),
    64: (8, 8, 4, 2, 1),
}


@dataclass
class CDCGANConfig(Serialisable):
    """Sizes of the lean class-conditional DCGAN."""

    config_name = "conditional DCGAN config"

    resolution: int = setting(32, choices=tuple(WIDTHS))
    ch: int = setting(32, minimum=1)
    z_dim: int = 128
    embed_dim: int = 128
    num_classes: int = 96
    hierarchical: bool = True
    """Split z into one chunk per block (plus one for the input), as BigGAN does."""


class CDCGANGenerator(nn.Module):
    """z (N, z_dim) and class labels (N,) -> images (N, 3, R, R) in [-1, 1]."""

    def __init__(self, config: CDCGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or CDCGANConfig()
        if config.resolution not in WIDTHS:
            raise ValueError(f"resolution {config.resolution} is not one of {sorted(WIDTHS)}")
        widths = [m * config.ch for m in WIDTHS[config.resolution]]
        chunks = len(widths) if config.hierarchical else 1
        if config.z_dim % chunks:
            raise ValueError(f"z_dim {config.z_dim} must split into {chunks} equal chunks")
        self.chunk = config.z_dim // chunks
        condition_dim = config.embed_dim + (self.chunk if config.hierarchical else 0)
        self.shared = nn.Embedding(config.num_classes, config.embed_dim)
        self.linear = nn.Linear(self.chunk, widths[0] * 16)
        self.norms = nn.ModuleList(ConditionalBatchNorm2d(w, condition_dim) for w in widths[:-1])
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in pairwise(widths))
        self.output_bn = nn.BatchNorm2d(widths[-1])
        self.output_conv = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.chunk, dim=1)
        embedding = self.shared(labels)
        h = self.linear(chunks[0]).view(z.shape[0], -1, 4, 4)
        for level, (norm, conv) in enumerate(zip(self.norms, self.convs, strict=True), start=1):
            y = torch.cat([embedding, chunks[level]], dim=1) if self.config.hierarchical else embedding
            h = conv(F.interpolate(F.relu(norm(h, y)), scale_factor=2))
        return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


@register_source("cdcgan", config=CDCGANConfig, generator=CDCGANGenerator)
class CDCGANDiscriminator(nn.Module):
    """Images and labels -> a realness score: strided convs, then a linear head plus a class projection."""

    def __init__(self, config: CDCGANConfig | None = None) -> None:
        super().__init__()
        config = config or CDCGANConfig()
        levels = config.resolution.bit_length() - 2  # down to 2x2
        widths = [3] + [config.ch * 2**i for i in range(levels)]
        self.convs = nn.ModuleList(
            spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1), eps=1e-6)
            for cin, cout in pairwise(widths)
        )
        features = widths[-1] * 4
        self.linear = spectral_norm(nn.Linear(features, 1), eps=1e-6)
        self.embed = spectral_norm(nn.Embedding(config.num_classes, features), eps=1e-6)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        h = x.flatten(1)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)
