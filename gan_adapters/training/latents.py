"""Latents: the per-image codes learned in training, their regulariser, and sampling.

Each training image owns a learnable latent. A symmetric Chamfer distance to samples of
the prior is meant to keep the learned latents spread like the prior (Noguchi & Harada's
latent regulariser). Measured here (docs/training.md): in 100 dimensions the learned
latents still contract to an RMS near 0.14, so random latents drawn from N(0, 0.5^2) land
outside the region training shaped; drawing from a Gaussian fitted to the learned latents
(`fitted_to=`) samples where training was.
"""

from __future__ import annotations

import torch


def chamfer_to_prior(latents: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """mean_t min_i ||z_i - t||^2 + mean_i min_t ||z_i - t||^2 over flattened latents."""
    z = latents.reshape(latents.shape[0], -1)
    t = samples.reshape(samples.shape[0], -1).to(z.dtype)
    distances = torch.cdist(z, t).square()
    return distances.min(dim=0).values.mean() + distances.min(dim=1).values.mean()


def sample_latents(
    count: int,
    shape: tuple[int, ...],
    *,
    sigma: float = 1.0,
    truncation: float | None = None,
    generator: torch.Generator | None = None,
    fitted_to: torch.Tensor | None = None,
) -> torch.Tensor:
    """z ~ N(0, sigma^2 I), or with `fitted_to` (learned latents, (N, *shape)) z ~ N(mean,
    (sigma * std)^2) per dimension of those latents. With `truncation`, standard-normal
    entries beyond +-truncation are redrawn before scaling (the truncation trick)."""
    z = standard_normal(count, shape, truncation, generator)
    if fitted_to is None:
        return z * sigma
    flat = fitted_to.detach().float().reshape(fitted_to.shape[0], -1)
    mean, std = flat.mean(0), flat.std(0) if flat.shape[0] > 1 else torch.zeros_like(flat[0])
    return (mean + z.reshape(count, -1) * std * sigma).reshape(count, *shape)


def standard_normal(
    count: int,
    shape: tuple[int, ...],
    truncation: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """N(0, I) draws, redrawing entries beyond +-truncation when given."""
    z = torch.randn((count, *shape), generator=generator)
    if truncation is not None:
        if truncation <= 0:
            raise ValueError(f"truncation must be positive, got {truncation}")
        outside = z.abs() > truncation
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = z.abs() > truncation
    return z


def interpolate(start: torch.Tensor, end: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation from `start` to `end` (both included): (frames, *shape)."""
    weights = torch.linspace(0, 1, frames).view(-1, *([1] * start.dim()))
    return start.unsqueeze(0) * (1 - weights) + end.unsqueeze(0) * weights
