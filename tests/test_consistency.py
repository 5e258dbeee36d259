"""The consistency regulariser (CDC): zero while the adapters are the identity, a KL divergence
computed as by hand, gradients for the adapters only, and both recipes train with it."""

from __future__ import annotations

import math

import pytest
import torch

import gan_adapters as ga
from gan_adapters.training.consistency import distance_consistency, frozen_source, with_consistency
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import read_metrics
from gan_adapters.training.trainer import train
from tests.test_training import tiny_config
from tests.tiny_models import tiny_dcgan


def test_the_term_is_the_kl_of_similarity_softmaxes_as_by_hand():
    source = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])]
    adapted = [torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])]  # collapsed: every similarity 1
    r = 1 / math.sqrt(2)
    others = [[0.0, r], [0.0, r], [r, r]]  # cosine similarities to the other two, per sample
    expected = 0.0
    for sims in others:
        p = [math.exp(s) / sum(math.exp(t) for t in sims) for s in sims]
        expected += sum(pi * math.log(pi / 0.5) for pi in p)  # against the uniform of a collapse
    assert distance_consistency(source, adapted).item() == pytest.approx(expected / 3, rel=1e-6)
    assert distance_consistency(source, source).item() == 0.0


def forward(generator: torch.nn.Module, codes: torch.Tensor) -> torch.Tensor:
    return generator(codes)


def test_zero_at_the_identity_and_gradients_for_the_adapters_only():
    bundle = tiny_dcgan()
    model = ga.inject(bundle.model, kind="apgc", group_size=4)
    z = torch.randn(6, 8, 1, 1, generator=torch.Generator().manual_seed(0))
    images, term = with_consistency(model, forward, z, 6)
    assert term.item() == 0.0 and images.shape == (6, 3, 16, 16)
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    _, term = with_consistency(model, forward, z, 6)
    assert term.item() > 0
    term.backward()
    trained = list(ga.trainable_parameters(model))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    assert all(p.grad is None for p in model.parameters() if not any(p is q for q in trained))


@pytest.mark.parametrize("recipe", ["supervised", "adversarial"])
def test_both_recipes_train_with_it_and_log_it(recipe, tmp_path):
    options = {"recipe": recipe, "consistency_weight": 2.0, "steps": 3, "images": 4, "batch_size": 4}
    if recipe == "adversarial":
        options["disc_width"] = 8
    result = train(tiny_config(**options), tmp_path / "run")
    rows = read_metrics(result.paths.metrics)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r["consistency"])) for r in rows)
    assert float(rows[0]["consistency"]) == 0.0, "the adapters start as the identity"


def test_it_needs_three_samples_a_batch():
    with pytest.raises(ga.ConfigError, match="consistency_weight compares each sample with the others"):
        TrainConfig(data="x", consistency_weight=1.0, batch_size=2)


def test_under_full_fine_tuning_the_source_is_a_frozen_copy():
    generator = tiny_dcgan().model.eval()
    source = frozen_source(generator)
    kept = {k: v.clone() for k, v in source.state_dict().items()}
    z = torch.randn(6, 8, 1, 1, generator=torch.Generator().manual_seed(0))
    _, term = with_consistency(generator, forward, z, 6, source)
    assert term.item() == 0.0, "identical weights: identical similarity distributions"
    with torch.no_grad():
        for param in generator.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    _, term = with_consistency(generator, forward, z, 6, source)
    assert term.item() > 0
    term.backward()
    first = next(generator.parameters())  # before every norm: its features depend on it
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert all(p.grad is None for p in source.parameters())
    assert all(torch.equal(v, kept[k]) for k, v in source.state_dict().items()), "the source never moves"


@pytest.mark.parametrize("recipe", ["supervised", "adversarial"])
def test_full_fine_tuning_trains_with_it(recipe, tmp_path):
    options = {"recipe": recipe, "method": "full", "consistency_weight": 1.0, "steps": 2, "images": 4}
    options |= {"batch_size": 4, "disc_width": 8} if recipe == "adversarial" else {"batch_size": 4}
    result = train(tiny_config(**options), tmp_path / "run")
    rows = read_metrics(result.paths.metrics)
    assert float(rows[0]["consistency"]) == 0.0, "the copy equals the generator before the first step"
    assert float(rows[1]["consistency"]) > 0.0, "after one step of full fine-tuning they differ"
