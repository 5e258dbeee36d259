"""Fidelity and diversity as two numbers each: precision/recall and density/coverage on k-NN balls.

Each real feature gets a ball whose radius is the distance to its k-th nearest real neighbour
(itself excluded); the generated set gets the same from its own neighbours.

- precision (Kynkäänniemi et al. 2019): the fraction of generated samples inside some real ball
  (fidelity: samples that look like real images).
- recall: the fraction of real images inside some generated ball (diversity: how much of the
  real variety the samples reach).
- density (Naeem et al. 2020): how many real balls hold each generated sample, over k, averaged;
  1 for samples distributed like the real set, above 1 where they crowd its densest part.
- coverage: the fraction of real images whose ball holds at least one generated sample; robust
  to a few outliers in the real set, unlike recall.

All four read features (N, D) and need more than k of each set (the k-th neighbour must exist).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_adapters.errors import ConfigError

DEFAULT_NEIGHBOURS = 5
"""k of the k-NN balls: the value the papers and the `prdc` package use."""


@dataclass(frozen=True)
class Manifold:
    """Precision, recall, density and coverage of one generated set against one real set."""

    precision: float
    recall: float
    density: float
    coverage: float
    neighbours: int


def neighbour_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point of the same set."""
    distances = torch.cdist(features, features)
    # The smallest distance in each row is the point to itself (0): the k-th other is at k.
    return distances.kthvalue(k + 1, dim=1).values


def manifold(generated: torch.Tensor, real: torch.Tensor, k: int = DEFAULT_NEIGHBOURS) -> Manifold:
    """Precision, recall, density and coverage of `generated` against `real` with k-NN balls."""
    smallest = min(len(generated), len(real))
    if k < 1 or smallest <= k:
        raise ConfigError(
            f"precision/recall with k = {k} need more than {k} images on each side "
            f"(got {len(generated)} generated, {len(real)} real): score more images or lower k"
        )
    x, y = generated.double(), real.double()
    real_radii, generated_radii = neighbour_radii(y, k), neighbour_radii(x, k)
    cross = torch.cdist(y, x)  # (real, generated)
    inside_real_balls = cross <= real_radii[:, None]
    inside_generated_balls = cross <= generated_radii[None, :]
    return Manifold(
        precision=float(inside_real_balls.any(0).double().mean()),
        recall=float(inside_generated_balls.any(1).double().mean()),
        density=float(inside_real_balls.double().sum(0).mean() / k),
        coverage=float((cross.min(1).values <= real_radii).double().mean()),
        neighbours=k,
    )
