"""The grouped 1x1 implementations agree, and the path table picks among them as documented."""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo as dynamo

import gan_adapters as ga
from gan_adapters.errors import ConfigError
from gan_adapters.surgery.paths import PathTiming, _choose, candidates, choose_path, device_name
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2}
"""The implementations sum the same g products in different orders: float rounding only."""


def reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, groups: int) -> torch.Tensor:
    """The definition, in float64: the block-diagonal C x C matrix applied at every position."""
    channels, size = weight.shape
    dense = torch.zeros(channels, channels, dtype=torch.float64)
    for group in range(groups):
        rows = slice(group * size, (group + 1) * size)
        dense[rows, rows] = weight[rows].double()
    out = torch.einsum("ij,nj...->ni...", dense, x.double())
    return out + bias.double().reshape(1, -1, *([1] * (x.dim() - 2)))


SHAPES = {
    "image": (3, 16, 5, 7),
    "channels_last": (3, 16, 5, 7),
    "sequence": (3, 16, 9),
    "vector": (3, 16),
}


@pytest.mark.parametrize("implementation", sorted(POINTWISE_IMPLEMENTATIONS))
@pytest.mark.parametrize("layout", sorted(SHAPES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_implementation_computes_the_grouped_1x1_and_its_gradient(implementation, layout, dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPES[layout], generator=gen)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    weight, bias = torch.randn(16, 4, generator=gen), torch.randn(16, generator=gen)
    leaves = [t.to(dtype, copy=True).requires_grad_() for t in (x, weight, bias)]
    out = POINTWISE_IMPLEMENTATIONS[implementation](*leaves, 4)
    assert out.shape == x.shape and out.dtype == dtype
    if layout == "channels_last" and implementation != "dense":
        assert out.is_contiguous(memory_format=torch.channels_last), "channels_last survives"
    expected = reference(x, weight, bias, 4)
    tolerance = TOLERANCE[dtype] * expected.abs().max().item()
    torch.testing.assert_close(out.double(), expected, atol=tolerance, rtol=0)
    out.float().square().sum().backward()
    references = [t.double().requires_grad_() for t in (x, weight, bias)]
    reference(*references, 4).square().sum().backward()
    for ours, theirs in zip(leaves, references, strict=True):
        scale = theirs.grad.abs().max().item()
        torch.testing.assert_close(ours.grad.double(), theirs.grad, atol=TOLERANCE[dtype] * scale * 4, rtol=0)


@pytest.mark.parametrize("implementation", sorted(POINTWISE_IMPLEMENTATIONS))
def test_a_forced_implementation_keeps_inject_the_exact_identity(dcgan, implementation):
    z = dcgan.example_inputs(batch=3)[0]
    with torch.no_grad():
        before = dcgan.model(z)
    config = ga.AdapterConfig(kind="apgc", ratio=2, bias=True, pointwise_impl=implementation)
    model = ga.inject(dcgan.model, config=config)
    with torch.no_grad():
        assert torch.equal(model(z), before), "a zero delta mixes in exact zeros, whatever the kernel"


def timing(ms: dict[str, float], channels=256, group_size=8, pixels=4096, device=None) -> PathTiming:
    return PathTiming(device or device_name("cpu"), "float32", channels, group_size, pixels, ms)


TABLE = (
    timing(
        {"conv": 3.0, "bmm": 1.0, "dense": 2.0, "folded-conv": 2.5, "folded-bmm": 0.9, "folded-dense": 1.5}
    ),
    timing(
        {"conv": 1.0, "bmm": 4.0, "dense": 2.0, "folded-conv": 0.5, "folded-bmm": 3.0, "folded-dense": 2.0},
        channels=2048,
        pixels=64,
    ),
    timing({"conv": 9.0, "bmm": 9.0, "dense": 0.1}, device="another machine"),
)


def choose(
    policy: tuple[str, str], channels=256, group_size=8, pixels=4096, dtype="float32", table=TABLE
) -> str:
    return _choose("cpu", dtype, channels, group_size, pixels, *policy, table)


def test_the_nearest_row_of_this_device_and_dtype_decides():
    assert candidates("conv", "exact") == candidates("conv", "never") == ["conv"], "exact never folds"
    assert candidates("bmm", "always") == ["folded-bmm"] and len(candidates("auto", "fast")) == 6
    assert choose(("auto", "never")) == "bmm"
    assert choose(("auto", "never"), channels=1536, pixels=128) == "conv", "nearer the wide row"
    assert choose(("auto", "fast")) == "folded-bmm"
    assert choose(("auto", "fast"), 2048, pixels=64) == "folded-conv"
    assert choose(("dense", "fast")) == "folded-dense", "a forced implementation, fold chosen"
    assert choose(("auto", "always"), channels=2048, pixels=64) == "folded-conv"
    assert choose(("auto", "never"), dtype="bfloat16") == "conv", "no bf16 row: the plain path"
    assert choose(("auto", "never"), table=TABLE[2:]) == "conv", "another machine's rows do not count"
    assert choose(("auto", "always"), table=()) == "folded-conv", "forced fold, default kernel"


def test_fold_and_implementation_are_validated_and_old_files_still_read():
    with pytest.raises(ConfigError, match="fold must be one of exact, fast, always, never"):
        ga.AdapterConfig(fold="sometimes")
    with pytest.raises(ConfigError, match="pointwise_impl must be one of auto, bmm, conv, dense"):
        ga.AdapterConfig(pointwise_impl="winograd")
    assert ga.AdapterConfig.from_dict({"fold": True}).fold == "exact"
    assert ga.AdapterConfig.from_dict({"fold": False}).fold == "never"


def test_set_execution_changes_how_adapters_run_and_refuses_bad_values_before_changing(dcgan, tmp_path):
    model = ga.inject(dcgan.model, kind="apgc", ratio=4)
    with pytest.raises(ConfigError, match="pointwise_impl"):
        ga.set_execution(model, fold="fast", pointwise_impl="winograd")
    adapters = [m for m in model.modules() if isinstance(m, ga.PointwiseConv)]
    assert {(a.fold, a.pointwise_impl) for a in adapters} == {("exact", "auto")}, "nothing changed"
    ga.set_execution(model, fold="always", pointwise_impl="bmm")
    assert {(a.fold, a.pointwise_impl) for a in adapters} == {("always", "bmm")}
    ga.save_adapters(model, tmp_path / "a.safetensors")
    fresh = ga.load_adapters(copy.deepcopy(ga.unload(model)), tmp_path / "a.safetensors")
    assert {(m.fold, m.pointwise_impl) for m in fresh.modules() if isinstance(m, ga.PointwiseConv)} == {
        ("always", "bmm")
    }


def test_path_choice_is_a_constant_to_torch_compile(dcgan):
    marked = torch.compiler.assume_constant_result(lambda: None)
    assert {k: v for k, v in vars(marked).items()} == {k: v for k, v in vars(choose_path).items()}, (
        "the path choice carries exactly the mark the public API sets"
    )
    model = ga.inject(dcgan.model, kind="apgc", ratio=4)
    ga.set_execution(model, fold="always", pointwise_impl="bmm")
    explanation = dynamo.explain(model)(*dcgan.example_inputs())
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons


def test_the_lookup_gets_the_calls_dtype_and_pixels_and_pixels_alone_can_decide(monkeypatch):
    import gan_adapters.surgery.adapters as adapters_module

    seen = []
    real = adapters_module.choose_path
    monkeypatch.setattr(adapters_module, "choose_path", lambda *args: seen.append(args) or real(*args))
    adapter = ga.GroupedPointwiseConv(16, group_size=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adapter(torch.randn(2, 16, 3, 5))
    adapter(torch.randn(4, 16, 2, 2, dtype=torch.float64).float())
    assert [(args[1], args[4]) for args in seen] == [(torch.bfloat16, 2 * 3 * 5), (torch.float32, 4 * 2 * 2)]
    small, large = (
        timing({"conv": 1.0, "bmm": 2.0}, pixels=16),
        timing({"conv": 2.0, "bmm": 1.0}, pixels=65536),
    )
    assert choose(("auto", "never"), pixels=32, table=(small, large)) == "conv"
    assert choose(("auto", "never"), pixels=32768, table=(small, large)) == "bmm"
    assert choose(("auto", "never"), pixels=0, table=(small,)) == "conv", (
        "unknown pixels (compiling): by shape"
    )
