"""The probe before the first step: the layout it reports is the one the model is left in, it leaves
no gradients and no changed state behind, greyscale targets are computed as luma from RGB, and an
output that leaves its declared range at either end is warned about."""

from __future__ import annotations

import logging

import torch
from torch import nn

from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.training.probe import fit_targets, probe_layout
from tests.tiny_models import noisy_spectral_dcgan, tiny_dcgan


def test_a_model_that_runs_channels_last_is_reported_and_left_channels_last():
    bundle = tiny_dcgan()
    layout, output = probe_layout(bundle, channels_last=True)
    assert layout == torch.channels_last
    weight = bundle.model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert output.shape == (2, 3, 16, 16)
    layout, _ = probe_layout(tiny_dcgan(), channels_last=False)
    assert layout == torch.contiguous_format


def test_the_probe_leaves_no_gradients_and_no_changed_state():
    bundle = noisy_spectral_dcgan()
    for param in bundle.model.parameters():
        param.requires_grad_(True)
    before = {k: v.clone() for k, v in bundle.model[1].__dict__.items() if isinstance(v, torch.Tensor)}
    assert before, "the block keeps its u vector as a plain attribute"
    probe_layout(bundle, channels_last=True)
    assert all(p.grad is None for p in bundle.model.parameters())
    after = {k: v for k, v in bundle.model[1].__dict__.items() if isinstance(v, torch.Tensor)}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_greyscale_targets_are_luma_of_red_green_blue_in_that_order():
    bundle = GeneratorBundle("grey", nn.Identity(), (1,), 2, 0, lambda z, labels: (z,))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    grey = fit_targets(bundle, torch.zeros(1, 1, 2, 2), red)
    assert grey.shape == (1, 1, 2, 2)
    torch.testing.assert_close(grey, torch.full((1, 1, 2, 2), 0.299 - 0.587 - 0.114))


def test_an_output_beyond_its_range_at_either_end_is_warned_about(caplog):
    bundle = GeneratorBundle("wide", nn.Identity(), (1,), 2, 0, lambda z, labels: (z,))
    targets = torch.zeros(1, 3, 2, 2)
    for low, high, warned in ((-3.0, 0.5, True), (-0.5, 3.0, True), (-1.2, 1.2, False)):
        caplog.clear()
        output = torch.full((1, 3, 2, 2), low)
        output[..., 0, 0] = high
        with caplog.at_level(logging.WARNING):
            fit_targets(bundle, output, targets)
        assert ("far outside its declared output_range" in caplog.text) == warned, (low, high)
