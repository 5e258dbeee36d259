"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout, applied alike
to real and generated images before a discriminator sees them, so small data sets do not let it
memorise the real images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_adapters.errors import ConfigError

AUGMENTATIONS = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable, applied alike to real and fake images."""
    n = x.shape[0]

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(x.device, x.dtype)

    for op in filter(None, policy.split(",")):
        if op == "color":
            x = x + (rand(n, 1, 1, 1) - 0.5)
            mean = x.mean(1, keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
        elif op == "translation":
            shift = (rand(n, 2) * 2 - 1) * 0.25  # up to 1/8 of the image (grid coordinates span 2)
            theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, :, 2] = shift
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        elif op == "cutout":
            h, w = x.shape[2:]
            size = (h // 2, w // 2)
            top = (rand(n, 1, 1) * (h - size[0] + 1)).long()
            left = (rand(n, 1, 1) * (w - size[1] + 1)).long()
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            hole = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
            x = x * (~hole).unsqueeze(1).to(x.dtype)
        else:
            raise ConfigError(f"unknown DiffAugment op {op!r} (color, translation, cutout)")
    return x
