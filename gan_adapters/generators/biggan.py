"""A BigGAN (Brock et al. 2019) generator and discriminator, written for this project.

The research's architecture at 64 or 128 px: class-conditional batch norm in every block
(gain = 1 + FC(y), bias = FC(y), y = [shared class embedding, z chunk], hierarchical z),
spectral norm everywhere, self-attention at one resolution, a plain BN before the output
convolution. `ConditionalBatchNorm2d` is in the norm registry, so `inject()` finds its sites
and hands y to conditional adapters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from gan_adapters.generators.sources import register_source
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting

ARCHITECTURES = {
    # resolution: (generator input multipliers, output multipliers, attention resolution)
    32: ([4, 4, 4], [4, 4, 4], 16),
    64: ([16, 8, 4, 2], [8, 4, 2, 1], 32),
    128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1], 64),
}


@dataclass
class BigGANConfig(Serialisable):
    """Sizes of a BigGAN; `BigGANConfig(resolution=128, ch=96, z_dim=120)` is BigGAN-128's shape."""

    config_name = "BigGAN config"

    resolution: int = setting(64, choices=tuple(ARCHITECTURES))
    ch: int = setting(32, minimum=1)
    z_dim: int = 120
    embed_dim: int = 128
    num_classes: int = 100
    attention: bool = True


def _sn_linear(i: int, o: int, bias: bool = True) -> nn.Linear:
    return spectral_norm(nn.Linear(i, o, bias=bias), eps=1e-6)


def _sn_conv(i: int, o: int, kernel: int = 3) -> nn.Conv2d:
    return spectral_norm(nn.Conv2d(i, o, kernel, padding=kernel // 2), eps=1e-6)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d without affine, then a per-sample affine from the condition y."""

    def __init__(self, channels: int, condition_dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.num_features = channels
        self.norm = nn.BatchNorm2d(channels, affine=False, eps=eps)
        self.gain = _sn_linear(condition_dim, channels, bias=False)
        self.bias = _sn_linear(condition_dim, channels, bias=False)

    def conditional_affine(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, bias), each (N, C): forward is norm(x) * gain + bias (so a scale/shift adapter
        after it folds into them; see `gan_adapters.surgery.hooks`)."""
        return 1 + self.gain(y), self.bias(y)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain, bias = self.conditional_affine(y)
        return torch.addcmul(bias[:, :, None, None], self.norm(x), gain[:, :, None, None])


class SelfAttention(nn.Module):
    """SAGAN self-attention with a learned residual weight (zero at start)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.theta, self.phi = _sn_conv(ch, ch // 8, 1), _sn_conv(ch, ch // 8, 1)
        self.g, self.out = _sn_conv(ch, ch // 2, 1), _sn_conv(ch // 2, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)
        g = F.max_pool2d(self.g(x), 2).flatten(2)
        attention = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)
        return x + self.gamma * self.out((g @ attention.transpose(1, 2)).view(n, c // 2, h, w))


class GeneratorBlock(nn.Module):
    """Residual up-block: CBN, ReLU, 2x up, conv, CBN, ReLU, conv; plus an upsampled 1x1 skip."""

    def __init__(self, cin: int, cout: int, condition_dim: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = (
            ConditionalBatchNorm2d(cin, condition_dim),
            ConditionalBatchNorm2d(cout, condition_dim),
        )
        self.conv1, self.conv2, self.skip = _sn_conv(cin, cout), _sn_conv(cout, cout), _sn_conv(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class BigGANGenerator(nn.Module):
    """z (N, z_dim) and class labels (N,) -> images (N, 3, R, R) in [-1, 1]."""

    def __init__(self, config: BigGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or BigGANConfig()
        ins, outs, attention_res = ARCHITECTURES[config.resolution]
        self.chunks = len(ins) + 1
        if config.z_dim % self.chunks:
            raise ValueError(f"z_dim {config.z_dim} must split into {self.chunks} equal chunks")
        self.chunk = config.z_dim // self.chunks
        condition_dim = config.embed_dim + self.chunk
        self.shared = nn.Embedding(config.num_classes, config.embed_dim)
        self.linear = _sn_linear(self.chunk, ins[0] * config.ch * 16)
        blocks: list[nn.Module] = []
        resolution = 4
        for cin, cout in zip(ins, outs, strict=True):
            resolution *= 2
            blocks.append(GeneratorBlock(cin * config.ch, cout * config.ch, condition_dim))
            if config.attention and resolution == attention_res:
                blocks.append(SelfAttention(cout * config.ch))
        self.blocks = nn.ModuleList(blocks)
        self.output_bn = nn.BatchNorm2d(outs[-1] * config.ch)
        self.output_conv = _sn_conv(outs[-1] * config.ch, 3)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.chunk, dim=1)
        embedding = self.shared(labels)
        h = self.linear(chunks[0]).view(z.shape[0], -1, 4, 4)
        level = 1
        for block in self.blocks:
            if isinstance(block, GeneratorBlock):
                h = block(h, torch.cat([embedding, chunks[level]], dim=1))
                level += 1
            else:
                h = block(h)
        return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


class DiscriminatorBlock(nn.Module):
    """Residual down-block (pre-activation except the first)."""

    def __init__(self, cin: int, cout: int, first: bool, down: bool = True) -> None:
        super().__init__()
        self.first, self.down = first, down
        self.conv1, self.conv2 = _sn_conv(cin, cout), _sn_conv(cout, cout)
        self.skip = _sn_conv(cin, cout, 1) if cin != cout or down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        skip = x
        if self.first:
            skip = self.skip(F.avg_pool2d(x, 2) if self.down else x)
        elif self.skip is not None:
            skip = self.skip(x)
            skip = F.avg_pool2d(skip, 2) if self.down else skip
        return h + skip


@register_source("biggan", config=BigGANConfig, generator=BigGANGenerator)
class BigGANDiscriminator(nn.Module):
    """Images and labels -> a realness score, with a class projection (Miyato & Koyama 2018)."""

    def __init__(self, config: BigGANConfig | None = None) -> None:
        super().__init__()
        config = config or BigGANConfig()
        outs = [m * config.ch for m in reversed(ARCHITECTURES[config.resolution][0])]
        ins = [3, *outs[:-1]]
        blocks: list[nn.Module] = []
        resolution = config.resolution
        attention_res = ARCHITECTURES[config.resolution][2]
        for index, (cin, cout) in enumerate(zip(ins, outs, strict=True)):
            blocks.append(DiscriminatorBlock(cin, cout, first=index == 0))
            resolution //= 2
            if config.attention and resolution == attention_res:
                blocks.append(SelfAttention(cout))
        blocks.append(DiscriminatorBlock(outs[-1], outs[-1], first=False, down=False))
        self.blocks = nn.Sequential(*blocks)
        self.linear = _sn_linear(outs[-1], 1)
        self.embed = spectral_norm(nn.Embedding(config.num_classes, outs[-1]), eps=1e-6)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)
