"""Several domains on one base: blends are exact where the issue says, routing per sample equals
forwards with each adapter active, and refusals leave the model as it was."""

from __future__ import annotations

import pytest
import torch

import gan_adapters as ga
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator
from gan_adapters.surgery.state import injection_state
from tests.tiny_models import tiny_dcgan


def randomise(model, name, seed):
    """Give adapter `name` random non-identity parameters (as if trained)."""
    gen = torch.Generator().manual_seed(seed)
    ga.set_adapter(model, name)
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(0.2 * torch.randn(param.shape, generator=gen))


def two_domains(first="ssa", second="ssa", **second_options):
    bundle = tiny_dcgan()
    model = ga.inject(bundle.model, kind=first, adapter_name="faces")
    model = ga.inject(model, kind=second, adapter_name="animals", **second_options)
    randomise(model, "faces", 1)
    randomise(model, "animals", 2)
    return model, torch.randn(6, 8, 1, 1, generator=torch.Generator().manual_seed(3))


def config_of(model, name):
    return injection_state(model).adapters[name].config


def output(model, name, z):
    ga.set_adapter(model, name)
    with torch.no_grad():
        return model(z)


def test_a_one_hot_blend_is_exactly_its_parent():
    for kinds in (("ssa", "ssa"), ("apgc", "apgc"), ("apc", "apc")):
        model, z = two_domains(*kinds)
        model = ga.blend(model, {"faces": 1.0, "animals": 0.0}, name="mix")
        assert torch.equal(output(model, "mix", z), output(model, "faces", z)), kinds


def test_a_half_half_blend_of_two_scale_shifts_is_the_mean_by_hand():
    model, _ = two_domains()
    model = ga.blend(model, {"faces": 0.5, "animals": 0.5}, name="mix")
    for module in model.modules():
        if type(module).__name__ == "AdapterSlot":
            faces, animals, mix = module["faces"], module["animals"], module["mix"]
            assert torch.allclose(mix.scale, (faces.scale + animals.scale) / 2, atol=1e-7)
            assert torch.allclose(mix.shift, (faces.shift + animals.shift) / 2, atol=1e-7)
    # Weights need not sum to 1: {faces: 0.5} alone is half of faces' change from the base.
    model = ga.blend(model, {"faces": 0.5}, name="part")
    slot = next(m for m in model.modules() if type(m).__name__ == "AdapterSlot")
    assert torch.allclose(slot["part"].scale, 1 + (slot["faces"].scale - 1) / 2, atol=1e-7)


def test_a_point_wise_blend_is_the_mean_of_the_outputs_and_kinds_mix_where_one_holds_the_other():
    model, z = two_domains("apgc", "apgc", group_size=4)  # faces: default group size 8
    model = ga.blend(model, {"faces": 0.5, "animals": 0.5}, name="mix")
    slot = next(m for m in model.modules() if type(m).__name__ == "AdapterSlot")
    assert slot["mix"].group_size == 8, "the group of 4 sits inside the group of 8"
    # A point-wise adapter is linear in its delta: the blend's first site output is the mean.
    x = torch.randn(2, slot["mix"].channels, 3, 3)
    with torch.no_grad():
        mean = (slot["faces"](x) + slot["animals"](x)) / 2
        assert torch.allclose(slot["mix"](x), mean, atol=1e-5)

    mixed, z = two_domains("ssa", "apgc", group_size=4)
    mixed = ga.blend(mixed, {"faces": 1.0, "animals": 0.0}, name="as-pointwise")
    config = config_of(mixed, "as-pointwise")
    assert config.kind == "apgc" and config.settings.bias, "a shift needs the point-wise bias"
    assert config.blended_from == {"faces": 1.0, "animals": 0.0}
    assert torch.allclose(output(mixed, "as-pointwise", z), output(mixed, "faces", z), atol=1e-5)


def test_a_blend_saves_and_loads_with_its_parents_and_weights(tmp_path):
    model, z = two_domains("ssa", "apgc")
    model = ga.blend(model, {"faces": 0.3, "animals": 0.7}, name="mix")
    expected = output(model, "mix", z)
    path = ga.save_adapters(model, tmp_path / "mix.safetensors", "mix")
    fresh = ga.load_adapters(tiny_dcgan().model, path)
    with torch.no_grad():
        assert torch.equal(fresh(z), expected)
    assert config_of(fresh, "mix").blended_from == {"faces": 0.3, "animals": 0.7}


def snapshot(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        ga.adapter_names(model),
        ga.active_adapter(model),
    )


def test_incompatible_blends_are_refused_and_the_model_is_unchanged():
    model, _ = two_domains("ssa", "apgc")
    model = ga.inject(model, kind="cbn", num_classes=3, adapter_name="classes")
    before = snapshot(model)
    with pytest.raises(ga.ConfigError, match=r"cannot blend 'classes' \(cbn\).*per-class tables"):
        ga.blend(model, {"animals": 0.5, "classes": 0.5}, name="mix")
    with pytest.raises(ga.AdapterStateError, match="no adapter named 'nope'"):
        ga.blend(model, {"faces": 0.5, "nope": 0.5}, name="mix")
    with pytest.raises(ga.ConfigError, match="finite"):
        ga.blend(model, {"faces": float("nan")}, name="mix")
    with pytest.raises(ga.AdapterStateError, match="already has an adapter named 'animals'"):
        ga.blend(model, {"faces": 1.0}, name="animals")
    after = snapshot(model)
    assert after[1:] == before[1:] and after[0].keys() == before[0].keys()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])

    partial = ga.inject(tiny_dcgan().model, kind="ssa", adapter_name="all")
    partial = ga.inject(partial, kind="ssa", adapter_name="some", exclude=[r"^1$"])
    with pytest.raises(ga.MismatchError, match="different sites"):
        ga.blend(partial, {"all": 0.5, "some": 0.5})


def test_a_mixed_batch_equals_each_adapter_active_row_by_row():
    model, z = two_domains("ssa", "apgc")
    names = ["faces", "animals", None, "animals", "faces", None]
    ga.set_execution(model, fold="never")  # the routed batch runs each adapter after its norm
    expected = torch.stack(
        [output(model, name, z)[i] if name else _base(model, z)[i] for i, name in enumerate(names)]
    )
    with ga.adapters_per_sample(model, names), torch.no_grad():
        routed = model(z)
    assert torch.equal(routed, expected)
    ga.set_execution(model, fold="exact")  # the default folds ssa into the BN: equal up to rounding
    single = torch.stack(
        [
            output(model, name, z[i : i + 1])[0] if name else _base(model, z[i : i + 1])[0]
            for i, name in enumerate(names)
        ]
    )
    assert torch.allclose(routed, single, atol=1e-5)
    with ga.adapters_per_sample(model, ["faces"] * 2), pytest.raises(ga.AdapterStateError, match="2 names"):
        model(z)
    with (
        pytest.raises(ga.AdapterStateError, match="no adapter named 'cats'"),
        ga.adapters_per_sample(model, ["cats"] * 6),
    ):
        pass


def _base(model, z):
    with ga.disable_adapters(model), torch.no_grad():
        return model(z)


def test_a_mixed_batch_compiles_as_one_graph_on_a_class_conditional_generator():
    generator = BigGANGenerator(BigGANConfig(resolution=32, ch=4, z_dim=16, num_classes=5)).eval()
    model = ga.inject(generator, kind="ssa", adapter_name="a")
    model = ga.inject(model, kind="apgc", group_size=4, adapter_name="b")
    randomise(model, "a", 5)
    randomise(model, "b", 6)
    z, labels = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    names = ["a", "b", None, "b"]
    with ga.adapters_per_sample(model, names), torch.no_grad():
        eager = model(z, labels)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True, backend="eager")(z, labels)
    assert torch.allclose(compiled, eager, atol=1e-6)
    ga.set_adapter(model, "b")
    with torch.no_grad():
        assert torch.allclose(eager[1], model(z, labels)[1], atol=1e-5)
