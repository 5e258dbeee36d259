"""Precision, recall, density and coverage: a case worked by hand, real halves, a collapsed set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_adapters.errors import ConfigError
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
    images = load_image_folder(HELDOUT, 32).images
    evaluator, config = Evaluator(cache=tmp_path), EvalConfig()
    halves = evaluator.score_images(images[0::2], images[1::2], config)
    assert halves.precision > 0.7 and halves.recall > 0.6 and halves.coverage > 0.8
    copied = evaluator.score_images(images[:1].expand(33, -1, -1, -1), images[1::2], config)
    assert copied.recall == 0.0 and copied.coverage < 0.1
