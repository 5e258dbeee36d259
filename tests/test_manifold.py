"""Precision, recall, density, coverage and intra-cluster diversity: cases worked by hand, real
halves, a collapsed set flagged as such."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.diversity import intra_cluster_diversity
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.manifold import manifold
from gan_adapters.evaluation.metrics import score
from gan_adapters.training.data import load_image_folder

HELDOUT = Path(__file__).resolve().parents[1] / "examples" / "data" / "heldout-animal-mammal"


def test_a_one_dimensional_case_worked_by_hand():
    # k = 1. Real radii: 0 -> 1, 1 -> 1, 3 -> 2, 6 -> 3. Generated radii: 0.5 -> 5, 5.5 -> 4.5, 10 -> 4.5.
    real = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    generated = torch.tensor([[0.5], [5.5], [10.0]])
    found = manifold(generated, real, k=1)
    assert found.precision == pytest.approx(2 / 3)  # 10 lies in no real ball
    assert found.recall == pytest.approx(1.0)  # every real point lies in a generated ball
    assert found.density == pytest.approx(1.0)  # 0.5 in two real balls, 5.5 in one, 10 in none
    assert found.coverage == pytest.approx(0.75)  # 3's ball (radius 2) holds no sample


def test_intra_cluster_diversity_on_a_case_worked_by_hand():
    # Centres 0 and 10 (mean pairwise distance 10). Samples 1, 2 join 0 (mean pair distance 1);
    # 9, 9.5, 11 join 10 (pairs 0.5, 2, 1.5: mean 4/3). (1 + 4/3) / 2 / 10.
    def euclidean(a, b):
        return torch.cdist(a[0], b[0])

    samples = [torch.tensor([[1.0], [2.0], [9.0], [9.5], [11.0]])]
    centres = [torch.tensor([[0.0], [10.0]])]
    assert intra_cluster_diversity(samples, centres, euclidean) == pytest.approx((1 + 4 / 3) / 2 / 10)
    lonely = [torch.tensor([[1.0], [9.0]])]
    assert intra_cluster_diversity(lonely, centres, euclidean) is None, "no cluster with two samples"


def test_two_draws_of_one_distribution_score_high_and_a_collapsed_set_scores_low():
    gen = torch.Generator().manual_seed(0)
    real, other = torch.randn(2, 200, 8, generator=gen)
    same = manifold(other, real)
    assert min(same.precision, same.recall, same.coverage) > 0.8
    assert 0.7 < same.density < 1.3
    collapsed = manifold(other[:1].expand(200, -1), real)
    assert collapsed.recall == 0.0
    assert collapsed.coverage < 0.05


def test_too_few_images_are_refused_with_the_counts_and_skipped_by_score():
    with pytest.raises(ConfigError, match=r"more than 5 images on each side \(got 5 generated, 9 real\)"):
        manifold(torch.randn(5, 4), torch.randn(9, 4))
    small = score(torch.randn(5, 4), torch.randn(9, 4))
    assert small.precision is None and small.coverage is None
    large = score(torch.randn(9, 4), torch.randn(9, 4))
    assert large.precision is not None and 0 <= large.recall <= 1


def test_real_emoji_halves_score_high_and_one_emoji_copied_scores_recall_near_zero(tmp_path):
    # 20 a side: Inception costs 0.15 s an image.
    images = load_image_folder(HELDOUT, 32, max_images=40).images
    evaluator, config = Evaluator(cache=tmp_path), EvalConfig()
    halves = evaluator.score_images(images[0::2], images[1::2], config)
    assert halves.precision > 0.7 and halves.recall > 0.6 and halves.coverage > 0.8
    assert halves.intra_cluster_diversity > 0.6 and halves.degenerate == ""
    copied = evaluator.score_images(images[:1].expand(20, -1, -1, -1), images[1::2], config)
    assert copied.recall == 0.0 and copied.coverage < halves.coverage / 4, "one sample covers a few balls"
    assert copied.intra_cluster_diversity < 1e-9
    assert copied.degenerate == "samples vary only 0% as much within their clusters as the training images do"
    # Scored around the training images the samples came from: still a collapse, still flagged.
    around_training = evaluator.score_images(
        images[:1].expand(20, -1, -1, -1), images[1::2], config, images[:10]
    )
    assert around_training.intra_cluster_diversity < 1e-9 and around_training.degenerate
