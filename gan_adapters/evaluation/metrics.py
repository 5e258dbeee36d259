"""Sample-quality metrics on Inception features: KID, KMMD, FID, and precision/recall/density/coverage.

- KID (Binkowski et al. 2018): the unbiased MMD^2 estimator with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets of min(1000, n, m) images (of half
  the smaller set when that would be a whole set); reported with its std over subsets.
  Unbiased, so it is the right ranking metric for 25-100 real images.
- KMMD: MMD^2 with a Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 b^2)), unbiased estimator
  on all samples. Noguchi & Harada report KMMD without publishing the bandwidth; here b is the
  median pairwise distance of the pooled features (the median heuristic) unless given.
- FID: |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), the trace of the square root taken
  from the eigenvalues of S_1 S_2 in float64. Only meaningful with many samples.

- Precision, recall, density and coverage (`manifold.py`): fidelity and diversity apart, on
  k-NN balls (k = 5), for sets of more than k images each.

The metrics read features (N, D); `features.py` computes them from images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.manifold import DEFAULT_NEIGHBOURS, manifold


@dataclass
class Scores:
    """The metrics of one generated set against one real set."""

    kid: float
    kid_std: float
    kmmd: float
    fid: float
    kmmd_bandwidth: float
    generated: int
    real: int
    spread_generated: float = 0.0
    """Mean pairwise feature distance within the generated set (0: every image the same)."""
    spread_real: float = 0.0
    precision: float | None = None
    """Fraction of samples inside the real images' k-NN manifold (None: a set of k images or fewer)."""
    recall: float | None = None
    """Fraction of real images inside the samples' k-NN manifold."""
    density: float | None = None
    coverage: float | None = None
    """Fraction of real images with a sample inside their k-NN ball."""
    intra_cluster_diversity: float | None = None
    """Within-cluster sample distance over the training images' own (`diversity.py`); None when not
    measured (no training images given) or no cluster holds two samples."""

    def to_dict(self) -> dict[str, float]:
        """Plain data."""
        return asdict(self)

    @property
    def degenerate(self) -> str:
        """Why the generated set is degenerate ('' when it is not): samples that copy or collapse
        (intra-cluster diversity), that reach none of the real variety (recall and coverage), or
        near-constant ones (feature spread) get fidelity numbers that compare nothing."""
        diversity = self.intra_cluster_diversity
        if diversity is not None and diversity < DEGENERATE_DIVERSITY:
            return (
                f"samples vary only {diversity:.0%} as much within their clusters as the training images do"
            )
        if self.recall is not None and self.recall == 0 and self.coverage < DEGENERATE_COVERAGE:
            return f"samples reach none of the real variety (recall 0, coverage {self.coverage:.2f})"
        if self.spread_real > 0 and self.spread_generated < DEGENERATE_SPREAD * self.spread_real:
            return f"samples only {self.spread_generated / self.spread_real:.0%} as varied as the real set"
        return ""


DEGENERATE_DIVERSITY = 0.3
"""Intra-cluster diversity below this is a set of near-copies: two halves of a real emoji set score
about 1, one emoji copied scores 0 (tests/test_manifold.py)."""
DEGENERATE_COVERAGE = 0.1
"""With recall 0, coverage below this: the samples sit in a sliver of the real set (one emoji
copied against real emoji scores recall 0, coverage under 0.1)."""
DEGENERATE_SPREAD = 0.7
"""A generated set whose spread is below this fraction of the real set's is flagged. Calibrated on
the reduced CPU comparison (docs/benchmarks.md): every cell whose samples were near-identical
blobs measured 0.29-0.64, every cell with varied samples 0.84-1.23."""


def spread(features: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance within a feature set (0 for fewer than two)."""
    if len(features) < 2:
        return 0.0
    distances = torch.cdist(features.double(), features.double())
    return float(distances.sum() / (len(features) * (len(features) - 1)))


def require_two_a_side(generated: int, real: int) -> None:
    """Refuse sets too small to score (a covariance or an unbiased MMD of one image is undefined)."""
    if min(generated, real) < 2:
        raise ConfigError(
            f"KID, KMMD and FID need at least 2 images on each side, got {generated} generated and "
            f"{real} real: sample more images or add real ones"
        )


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's kernel (x.y / d + 1)^3."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """exp(-|x - y|^2 / (2 bandwidth^2))."""
    return torch.exp(-torch.cdist(x, y).square() / (2 * bandwidth**2))


def mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    """The unbiased MMD^2 estimate from the three kernel matrices (diagonals excluded)."""
    m, n = k_xx.shape[0], k_yy.shape[0]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kid(
    generated: torch.Tensor, real: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of unbiased MMD^2 over random subsets."""
    x, y = generated.double(), real.double()
    size = min(subset_size, len(x), len(y))
    if size == min(len(x), len(y)) and size >= 4:
        # Subsets as large as a whole set would all be that set: use halves, so the spread
        # over subsets says something about the estimate's variance.
        size //= 2
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        xs = x[torch.randperm(len(x), generator=gen)[:size]]
        ys = y[torch.randperm(len(y), generator=gen)[:size]]
        values.append(
            mmd2_unbiased(polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys))
        )
    scores = torch.tensor(values, dtype=torch.float64)
    return float(scores.mean()), float(scores.std()) if len(values) > 1 else 0.0


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> float:
    """The median pairwise distance of the pooled samples (the median heuristic)."""
    pooled = torch.cat([x, y]).double()
    distances = torch.cdist(pooled, pooled)
    return float(distances[torch.triu(torch.ones_like(distances, dtype=torch.bool), diagonal=1)].median())


def kmmd(generated: torch.Tensor, real: torch.Tensor, bandwidth: float | None = None) -> tuple[float, float]:
    """Gaussian-kernel MMD^2 (unbiased) and the bandwidth it used."""
    x, y = generated.double(), real.double()
    b = median_bandwidth(x, y) if bandwidth is None else bandwidth
    value = mmd2_unbiased(gaussian_kernel(x, x, b), gaussian_kernel(y, y, b), gaussian_kernel(x, y, b))
    return value, b


def fid(generated: torch.Tensor, real: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets."""
    x, y = generated.double(), real.double()
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = torch.cov(x.T), torch.cov(y.T)
    # tr((S_x S_y)^(1/2)) is the sum of the square roots of the eigenvalues of S_x S_y, which
    # are real and non-negative (S_x S_y is similar to a PSD matrix); clip rounding noise.
    eigenvalues = torch.linalg.eigvals(cov_x @ cov_y).real.clamp(min=0)
    return float((mu_x - mu_y).square().sum() + cov_x.trace() + cov_y.trace() - 2 * eigenvalues.sqrt().sum())


def score(
    generated: torch.Tensor,
    real: torch.Tensor,
    *,
    kmmd_bandwidth: float | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> Scores:
    """KID, KMMD, FID, and (for more than `neighbours` images a side) precision, recall, density
    and coverage of generated features against real features; refused below two images a side."""
    require_two_a_side(len(generated), len(real))
    kid_mean, kid_std = kid(generated, real, kid_subsets, kid_subset_size, seed)
    kmmd_value, bandwidth = kmmd(generated, real, kmmd_bandwidth)
    scores = Scores(
        kid=kid_mean,
        kid_std=kid_std,
        kmmd=kmmd_value,
        fid=fid(generated, real),
        kmmd_bandwidth=bandwidth,
        generated=len(generated),
        real=len(real),
        spread_generated=spread(generated),
        spread_real=spread(real),
    )
    if min(len(generated), len(real)) > neighbours:
        found = manifold(generated, real, neighbours)
        scores.precision, scores.recall = found.precision, found.recall
        scores.density, scores.coverage = found.density, found.coverage
    return scores
