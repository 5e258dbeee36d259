"""KID, KMMD and FID checked against independent computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_adapters.evaluation.features import FeatureCache, InceptionPool3
from gan_adapters.evaluation.metrics import fid, kid, kmmd, score


def numpy_mmd2_unbiased(x: np.ndarray, y: np.ndarray, kernel) -> float:
    """Textbook loops: the mean over distinct pairs within each set minus twice the cross mean."""
    m, n = len(x), len(y)
    xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_plain_numpy_implementation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(0.3, 1.2, size=(30, 6))
    # One subset of 20 (not all 30: that would make every subset the whole smaller set).
    generator = torch.Generator().manual_seed(0)
    pick_x, pick_y = (
        torch.randperm(40, generator=generator)[:20],
        torch.randperm(30, generator=generator)[:20],
    )
    expected = numpy_mmd2_unbiased(x[pick_x.numpy()], y[pick_y.numpy()], lambda a, b: (a @ b / 6 + 1) ** 3)
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=20)
    assert mean == pytest.approx(expected, rel=1e-9) and std == 0.0
    _, spread = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=10)
    assert spread > 0, "subsets of half the smaller set differ"


def test_kmmd_matches_a_plain_numpy_implementation_and_uses_the_median_heuristic():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 5)), rng.normal(0.5, 1.0, size=(22, 5))
    pooled = np.concatenate([x, y])
    distances = [np.linalg.norm(pooled[i] - pooled[j]) for i in range(42) for j in range(i + 1, 42)]
    bandwidth = float(np.median(distances))
    expected = numpy_mmd2_unbiased(x, y, lambda a, b: math.exp(-np.sum((a - b) ** 2) / (2 * bandwidth**2)))
    value, used = kmmd(torch.from_numpy(x), torch.from_numpy(y))
    assert used == pytest.approx(bandwidth, rel=1e-9)
    assert value == pytest.approx(expected, rel=1e-9)


def test_fid_matches_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8))
    y = rng.normal(1.0, 1.0, size=(150, 8)) @ rng.normal(size=(8, 8))
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s_x @ s_y).real
    expected = np.sum((mu_x - mu_y) ** 2) + np.trace(s_x + s_y - 2 * root)
    assert fid(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_score_about_zero():
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(400, 16, generator=gen)
    same = score(features, features.clone(), kid_subsets=10, kid_subset_size=200)
    different = score(
        features, torch.randn(400, 16, generator=gen) + 0.5, kid_subsets=10, kid_subset_size=200
    )
    assert abs(same.fid) < 1e-9
    # The unbiased estimators count a sample against itself only within a set, so identical
    # sets sit a little below zero: tiny against a real difference.
    assert abs(same.kid) < 0.05 * different.kid and abs(same.kmmd) < 0.05 * different.kmmd
    fresh = score(features, torch.randn(400, 16, generator=gen), kid_subsets=10, kid_subset_size=200)
    assert abs(fresh.kid) < 3 * fresh.kid_std + 1e-3, "two draws of one distribution: KID ~ 0"


def test_two_gaussians_give_the_closed_forms():
    gen = torch.Generator().manual_seed(4)
    d, n = 2, 6000
    shift = torch.tensor([1.0, -0.5])
    x = torch.randn(n, d, generator=gen)  # N(0, I)
    y = 2 * torch.randn(n, d, generator=gen) + shift  # N(shift, 4 I)
    # FID of N(m1, s1^2 I) and N(m2, s2^2 I): |m1 - m2|^2 + d (s1 - s2)^2
    assert fid(x, y) == pytest.approx(float(shift.square().sum()) + d * (1 - 2) ** 2, rel=0.05)
    # MMD^2 with a Gaussian kernel of bandwidth b: E k = (b^2 / (b^2 + v))^(d/2) exp(-|dm|^2 / (2 (b^2 + v)))
    b = 1.5

    def mean_kernel(variance: float, gap: float = 0.0) -> float:
        return (b**2 / (b**2 + variance)) ** (d / 2) * math.exp(-gap / (2 * (b**2 + variance)))

    expected = mean_kernel(2 * 1) + mean_kernel(2 * 4) - 2 * mean_kernel(1 + 4, float(shift.square().sum()))
    value, _ = kmmd(x[:2000], y[:2000], bandwidth=b)
    assert value == pytest.approx(expected, abs=0.01)


def test_feature_cache_computes_once_per_image_set(tmp_path):
    calls = []

    def extractor(images):
        calls.append(len(images))
        return images.flatten(1)[:, :4] * 2

    cache = FeatureCache(tmp_path)
    images = torch.rand(3, 3, 8, 8)
    first = cache.features(images, extractor, "toy")
    again = cache.features(images.clone(), extractor, "toy")
    assert torch.equal(first, again) and calls == [3], "same bytes: read from disk"
    cache.features(images + 1e-3, extractor, "toy")
    cache.features(images, extractor, "other-network")
    assert calls == [3, 3, 3]


def test_fid_inception_features_offline():
    extractor = InceptionPool3(batch_size=2)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    features = extractor(images)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    assert torch.allclose(extractor(images[:1]), features[:1], atol=1e-4)
    assert not torch.allclose(features[0], features[1])
