"""Drawing latents for a trained run and turning them into images."""

from __future__ import annotations

import torch

from gan_adapters.errors import GanAdaptersError
from gan_adapters.latents import sample_latents
from gan_adapters.runs import AdaptedRun

PRIORS = ("fitted", "normal")


def draw_latents(
    run: AdaptedRun,
    count: int,
    prior: str = "fitted",
    sigma: float | None = None,
    truncation: float | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Latents for `count` images: from a Gaussian fitted to the run's learned latents
    ('fitted'; `sigma` scales its std, default 1) or from N(0, sigma^2) ('normal'; default
    sigma: the run's `sample_sigma`, else 0.5, the official default)."""
    generator = torch.Generator().manual_seed(seed)
    shape = run.bundle.latent_shape
    if prior == "fitted":
        if run.latents is None or len(run.latents) < 2:
            raise GanAdaptersError("this adapter file holds no learned latents to fit; use the normal prior")
        scale = 1.0 if sigma is None else sigma
        return sample_latents(
            count, shape, sigma=scale, truncation=truncation, generator=generator, fitted_to=run.latents
        )
    if prior != "normal":
        raise GanAdaptersError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    if sigma is None:
        sigma = run.config.sample_sigma if run.config is not None else 0.5
    return sample_latents(count, shape, sigma=sigma, truncation=truncation, generator=generator)


@torch.no_grad()
def generate(run: AdaptedRun, latents: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Images in [-1, 1] for the given latents, in batches."""
    bundle = run.bundle
    return torch.cat(
        [bundle.model(*bundle.forward_inputs(chunk, None)).float() for chunk in latents.split(batch_size)]
    )
