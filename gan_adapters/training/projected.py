"""A projected discriminator (Sauer et al., NeurIPS 2021) on frozen EfficientNet-Lite0 features.

The discriminator reads four feature maps of a frozen ImageNet network (strides 2, 4, 8, 16)
through fixed random projections: cross-channel mixing (a random 1x1 convolution per scale) and
cross-scale mixing (each scale also receives the upsampled, randomly mixed deeper scale). Only
the small heads, one per scale, train. A discriminator that starts from pretrained features
converges in a fraction of the steps and does not memorise 25 images at once.

The heads use spectral norm and no batch norm, so each image's score depends on that image
alone: a batch split over processes gives the same gradients as the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from gan_adapters.training.perceptual import EfficientNetLite0Backbone

FEATURE_CHANNELS = (16, 24, 40, 80)
"""Channels of EfficientNet-Lite0's blocks 0, 2, 4 and 7 (the perceptual backbone's taps)."""


class RandomProjection(nn.Module):
    """Fixed random cross-channel and cross-scale mixing (never trained, saved as buffers)."""

    def __init__(self, channels: tuple[int, ...], width: int, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        for index, cin in enumerate(channels):
            self.register_buffer(f"mix{index}", torch.randn(width, cin, 1, 1, generator=gen) / cin**0.5)
            if index < len(channels) - 1:
                self.register_buffer(
                    f"merge{index}", torch.randn(width, width, 3, 3, generator=gen) / (9 * width) ** 0.5
                )
        self.scales = len(channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [F.conv2d(f, getattr(self, f"mix{i}").to(f.dtype)) for i, f in enumerate(features)]
        out = [mixed[-1]]
        for index in range(self.scales - 2, -1, -1):  # top-down: deeper scales flow into shallower
            deeper = F.interpolate(out[0], size=mixed[index].shape[-2:], mode="bilinear", align_corners=False)
            merge = getattr(self, f"merge{index}").to(deeper.dtype)
            out.insert(0, mixed[index] + F.conv2d(deeper, merge, padding=1))
        return out


class Head(nn.Module):
    """A small trainable critic for one scale: strided convolutions down to 4x4, then one logit;
    with `num_classes`, plus a class projection of its pooled features (Miyato & Koyama 2018)."""

    def __init__(self, width: int, size: int, num_classes: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        while size > 4:
            layers += [spectral_norm(nn.Conv2d(width, width, 4, 2, 1)), nn.LeakyReLU(0.2)]
            size //= 2
        self.body = nn.Sequential(*layers)
        self.logit = spectral_norm(nn.Conv2d(width, 1, min(size, 4)))
        self.embed = spectral_norm(nn.Embedding(num_classes, width)) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        logit = self.logit(h).flatten(1).mean(1)
        if self.embed is None:
            return logit
        return logit + (self.embed(labels) * h.mean((2, 3))).sum(1)


class ProjectedDiscriminator(nn.Module):
    """Images in [-1, 1] (N, 3, R, R) -> one realness logit per image (the mean over scales);
    with `num_classes` it also reads class labels (pretraining a class-conditional source)."""

    def __init__(self, resolution: int, width: int = 64, seed: int = 0, num_classes: int = 0) -> None:
        super().__init__()
        self.features = EfficientNetLite0Backbone()  # frozen, eval mode, no gradients
        resolution = max(resolution, self.features.min_size)  # smaller images are upsampled to it
        self.projection = RandomProjection(FEATURE_CHANNELS, width, seed)
        sizes = [max(1, resolution // 2 ** (i + 1)) for i in range(4)]
        self.heads = nn.ModuleList(Head(width, size, num_classes) for size in sizes)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.features.eval()  # the feature network's BN statistics never move
        return self

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        projected = self.projection(self.features(images))
        return torch.stack([head(p, labels) for head, p in zip(self.heads, projected, strict=True)]).mean(0)
