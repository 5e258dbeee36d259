"""Folding at a frozen BatchNorm computes what the plain path does: scale/shift into the norm's
affine, and the norm's affine into a point-wise adapter's grouped 1x1 (with every implementation)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo as dynamo

import gan_adapters as ga
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator
from gan_adapters.surgery import paths
from gan_adapters.surgery.paths import PathTiming, device_name
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2}
"""Folding reorders a few multiply-adds per element: float rounding only (per dtype)."""
POINTWISE_BF16 = 5e-2
"""bf16, norm folded into a point-wise adapter: its weight (I + delta) * gamma / sigma is itself
rounded to bf16, a few ulps (1/128 near 1) over the DCGAN's four layers."""

FOLDS = {
    "ssa into the norm": dict(kind="ssa"),
    **{
        f"norm into apgc, {impl}": dict(kind="apgc", ratio=2, bias=True, fold="always", pointwise_impl=impl)
        for impl in sorted(POINTWISE_IMPLEMENTATIONS)
    },
}


def count_adapter_calls(model) -> list[int]:
    calls = [0]
    for module in model.modules():
        if isinstance(module, ga.Adapter):
            module.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("options", FOLDS.values(), ids=FOLDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_folded_paths_match_the_plain_path_in_value_and_gradient(dcgan, dtype, options):
    folded = ga.inject(copy.deepcopy(dcgan.model), config=ga.AdapterConfig(**options))
    plain = ga.inject(copy.deepcopy(dcgan.model), config=ga.AdapterConfig(**options | {"fold": "never"}))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a, b in zip(ga.trainable_parameters(folded), ga.trainable_parameters(plain), strict=True):
            a.copy_(a + torch.randn(a.shape, generator=gen) * 0.3)
            b.copy_(a)
    z = dcgan.example_inputs(batch=4)[0]
    calls_folded, calls_plain = count_adapter_calls(folded), count_adapter_calls(plain)
    outputs, grads = [], []
    for model in (folded, plain):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            out = model(z)
        out.float().square().mean().backward()
        outputs.append(out.float())
        grads.append([p.grad.clone() for p in ga.trainable_parameters(model)])
    assert calls_folded == [0] and calls_plain == [4], "the folded path skips the adapter's own pass"
    tolerance = POINTWISE_BF16 if dtype == torch.bfloat16 and options["kind"] == "apgc" else TOLERANCE[dtype]
    torch.testing.assert_close(outputs[0], outputs[1], atol=tolerance, rtol=tolerance)
    for g_folded, g_plain in zip(*grads, strict=True):
        scale = g_plain.abs().max().item()
        torch.testing.assert_close(g_folded, g_plain, atol=tolerance * 10 * scale, rtol=0)


def test_fast_folds_where_the_table_measured_it_faster_and_exact_never_folds_a_pointwise_adapter(
    dcgan, monkeypatch
):
    shapes = [(512, 64), (256, 512), (128, 2048), (64, 8192)]  # the face DCGAN's BN sites at batch 4
    rows = tuple(
        PathTiming(device_name("cpu"), "float32", c, 4, p, {"conv": 2.0, "folded-bmm": 1.0})
        for c, p in shapes
    )
    monkeypatch.setattr(paths, "read_table", lambda: rows)
    z = dcgan.example_inputs(batch=4)[0]
    for fold, adapter_calls in (("exact", 4), ("fast", 0)):
        model = ga.inject(copy.deepcopy(dcgan.model), kind="apgc", ratio=2)
        ga.set_execution(model, fold=fold, pointwise_impl="auto")
        calls = count_adapter_calls(model)
        with torch.no_grad():
            model(z)
        assert calls == [adapter_calls], f"fold={fold!r}"


def test_folding_is_exact_at_init_and_steps_aside_in_train_mode_and_when_disabled(dcgan):
    z = dcgan.example_inputs(batch=3)[0]
    with torch.no_grad():
        before = dcgan.model(z)
    model = ga.inject(dcgan.model, kind="ssa")
    calls = count_adapter_calls(model)
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


def test_scale_shift_folds_into_a_class_conditional_norms_gain_and_bias():
    torch.manual_seed(0)
    generator = BigGANGenerator(BigGANConfig(resolution=32, ch=4, num_classes=5)).eval()
    z, labels = torch.randn(3, 120), torch.tensor([0, 2, 4])
    with torch.no_grad():
        before = generator(z, labels)
    folded = ga.inject(copy.deepcopy(generator), kind="ssa", targets=["ConditionalBatchNorm2d"])
    plain = ga.inject(copy.deepcopy(generator), kind="ssa", targets=["ConditionalBatchNorm2d"], fold="never")
    calls_folded, calls_plain = count_adapter_calls(folded), count_adapter_calls(plain)
    with torch.no_grad():
        assert torch.equal(folded(z, labels), before), "gain * 1 and bias * 1 + 0 are gain and bias exactly"
        assert torch.equal(plain(z, labels), before)
    assert calls_folded == [0] and calls_plain == [6], "6 conditional BNs; folded, no adapter pass"
    assert dynamo.explain(folded)(z, labels).graph_break_count == 0
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for a, b in zip(ga.trainable_parameters(folded), ga.trainable_parameters(plain), strict=True):
            a.copy_(a + torch.randn(a.shape, generator=gen) * 0.3)
            b.copy_(a)
    outputs, grads = [], []
    for model in (folded, plain):
        model.train()  # batch statistics: the fold does not depend on the mode
        out = model(z, labels)
        out.square().mean().backward()
        outputs.append(out)
        grads.append([p.grad for p in ga.trainable_parameters(model)])
    assert calls_folded == [0] and calls_plain == [12], "in train mode too"
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    conditional = ga.inject(
        copy.deepcopy(generator), kind="ssa", conditional=True, targets=["ConditionalBatchNorm2d"]
    )
    calls = count_adapter_calls(conditional)
    with torch.no_grad():
        conditional(z, labels)
    assert calls == [6], "a conditional scale/shift depends on the condition: not folded"
    base = ga.unload(folded)
    assert all("forward" not in m.__dict__ for m in base.modules()), "unload removes the folding forward"


class ConditionedBatchNorm(torch.nn.BatchNorm2d):
    """A user's BatchNorm subclass with its own forward: it takes a condition and computes more."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__(channels)
        self.embed = torch.nn.Embedding(classes, channels)

    def forward(self, x, y):
        return super().forward(x) * (1 + self.embed(y)[:, :, None, None])


class DoubledBatchNorm(torch.nn.BatchNorm2d):
    def forward(self, x):
        return 2 * super().forward(x)


class TwoNorms(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 1)
        self.conditioned = ConditionedBatchNorm(8, 3)
        self.doubled = DoubledBatchNorm(8)

    def forward(self, x, y):
        return self.doubled(self.conditioned(self.conv(x), y))


@pytest.mark.parametrize("options", [dict(kind="ssa"), dict(kind="apgc", group_size=4)], ids=str)
def test_a_norm_subclass_with_its_own_forward_keeps_it_and_its_adapter_runs_after_it(options):
    """Folding assumes the output is norm(x) * weight + bias, true only of torch's own forward: a
    subclass's forward (a condition, a factor) must run, with its adapter after it, fold or not."""
    torch.manual_seed(0)
    model = TwoNorms().eval()
    for norm in (model.conditioned, model.doubled):
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2)
    adapted = ga.inject(copy.deepcopy(model), conditional=True, fold="always", **options)
    with torch.no_grad():
        for parameter in ga.trainable_parameters(adapted):
            parameter.normal_(std=0.3)
    first, second = (m for m in adapted.modules() if isinstance(m, ga.Adapter))
    assert first.conditional and not second.conditional, "the condition is read where the layer takes one"
    x, y = torch.randn(4, 3, 5, 5), torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        h = first(ConditionedBatchNorm.forward(model.conditioned, model.conv(x), y), y)
        expected = second(DoubledBatchNorm.forward(model.doubled, h))
        torch.testing.assert_close(adapted(x, y), expected, atol=1e-6, rtol=1e-6)
    if options["kind"] == "ssa":
        report = ga.merge(adapted)
        assert report.merged == [] and "own forward" in report.skipped["doubled"]
