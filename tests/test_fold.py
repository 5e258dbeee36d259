"""Scale/shift folded into a BatchNorm's affine at train time computes what the plain path does."""

from __future__ import annotations

import copy

import pytest
import torch

import gan_adapters as ga

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2}
"""Folding reorders one multiply-add per element: float rounding only."""


def _count_adapter_calls(model) -> list[int]:
    calls = [0]
    for module in model.modules():
        if isinstance(module, ga.ScaleShift):
            module.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_folded_scale_shift_matches_the_plain_path_in_value_and_gradient(dcgan, dtype):
    folded = ga.inject(copy.deepcopy(dcgan.model), kind="ssa")
    plain = ga.inject(copy.deepcopy(dcgan.model), kind="ssa", config=ga.AdapterConfig(kind="ssa", fold=False))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a, b in zip(ga.trainable_parameters(folded), ga.trainable_parameters(plain), strict=True):
            a.copy_(a + torch.randn(a.shape, generator=gen) * 0.3)
            b.copy_(a)
    z = dcgan.example_inputs(batch=4)[0]
    calls_folded, calls_plain = _count_adapter_calls(folded), _count_adapter_calls(plain)
    outputs, grads = [], []
    for model in (folded, plain):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            out = model(z)
        out.float().square().mean().backward()
        outputs.append(out.float())
        grads.append([p.grad.clone() for p in ga.trainable_parameters(model)])
    assert calls_folded == [0] and calls_plain == [4], "the folded path skips the adapter's own pass"
    torch.testing.assert_close(outputs[0], outputs[1], atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])
    for g_folded, g_plain in zip(*grads, strict=True):
        torch.testing.assert_close(g_folded, g_plain, atol=TOLERANCE[dtype] * 10, rtol=TOLERANCE[dtype] * 10)


def test_folding_is_exact_at_init_and_steps_aside_in_train_mode_and_when_disabled(dcgan):
    z = dcgan.example_inputs(batch=3)[0]
    with torch.no_grad():
        before = dcgan.model(z)
    model = ga.inject(dcgan.model, kind="ssa")
    calls = _count_adapter_calls(model)
    with torch.no_grad():
        assert torch.equal(model(z), before), "w * 1 and b * 1 + 0 are w and b exactly"
        saved = copy.deepcopy(model.state_dict())
        model.train()
        model(z)
        assert calls == [4], "in train mode the BN uses batch statistics: the plain path runs"
        model.eval()
        model.load_state_dict(saved)  # train mode moved the running statistics
        with ga.disable_adapters(model):
            assert torch.equal(model(z), before)
    base = ga.unload(model)
    assert all("forward" not in m.__dict__ for m in base.modules()), "unload removes the folding forward"
