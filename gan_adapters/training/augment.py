"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout, applied alike
to real and generated images before a discriminator sees them, so small data sets do not let it
memorise the real images.

The random draws are separate from their application (`draw_augmentation`, then
`apply_augmentation`), so a run split over several processes can draw for the whole batch and
apply each process's rows: the same images get the same augmentation however many processes run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_adapters.errors import ConfigError
from gan_adapters.training.seeding import to_device

AUGMENTATIONS = ("color", "translation", "cutout")
_UNIFORMS = {"color": 3, "translation": 2, "cutout": 2}
"""How many uniform draws per image each operation takes."""


def check_policy(policy: str) -> list[str]:
    """The operations of a policy such as 'color,translation,cutout' (refusing unknown ones)."""
    ops = [op for op in policy.split(",") if op]
    unknown = [op for op in ops if op not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown DiffAugment op {unknown[0]!r}; known: {', '.join(AUGMENTATIONS)}")
    return ops


def draw_augmentation(
    policy: str, count: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Uniform draws (count, k) per operation of the policy, on the CPU (index rows to split)."""
    return {op: torch.rand(count, _UNIFORMS[op], generator=generator) for op in check_policy(policy)}


def apply_augmentation(x: torch.Tensor, draws: dict[str, torch.Tensor]) -> torch.Tensor:
    """Augment images (N, C, H, W) with draws of N rows from `draw_augmentation`."""
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    for op, u in draws.items():
        u = to_device(u, x.device).to(x.dtype)
        if op == "color":
            x = x + (u[:, 0, None, None, None] - 0.5)
            mean = x.mean(1, keepdim=True)
            x = (x - mean) * (u[:, 1, None, None, None] * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (u[:, 2, None, None, None] + 0.5) + mean
        elif op == "translation":
            theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, :, 2] = (u * 2 - 1) * 0.25  # up to 1/8 of the image (grid coordinates span 2)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        elif op == "cutout":
            size = (h // 2, w // 2)
            top = (u[:, 0] * (h - size[0] + 1)).long().view(n, 1, 1)
            left = (u[:, 1] * (w - size[1] + 1)).long().view(n, 1, 1)
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            hole = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
            x = x * (~hole).unsqueeze(1).to(x.dtype)
    return x


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw and apply in one call (a single process, or a batch that is not split)."""
    return apply_augmentation(x, draw_augmentation(policy, x.shape[0], generator))
