"""Several named adapters on one base, switching, disabling, class conditioning and merging."""

from __future__ import annotations

import pytest
import torch
from generators import InlineNormGenerator, LabelNormGenerator, randomize_norm_statistics

import gan_adapters as ga


def _perturb(model, scale=0.1):
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(torch.randn_like(param) * scale)


def test_named_adapters_switch_and_only_the_active_one_trains(dcgan):
    inputs = dcgan.example_inputs()
    with torch.no_grad():
        base = dcgan.model(*inputs)
    model = ga.inject(dcgan.model, kind="ssa", adapter_name="emoji")
    _perturb(model)
    with torch.no_grad():
        emoji = model(*inputs)
    model = ga.inject(model, kind="apgc", ratio=2, adapter_name="flowers")
    assert ga.adapter_names(model) == ["emoji", "flowers"] and ga.active_adapter(model) == "flowers"
    with torch.no_grad():
        assert torch.equal(model(*inputs), base), "a new adapter starts as the identity"
    trainable = {id(p) for p in ga.trainable_parameters(model)}
    flowers = {
        id(p) for m in model.modules() if isinstance(m, ga.GroupedPointwiseConv) for p in m.parameters()
    }
    assert trainable == flowers

    ga.set_adapter(model, "emoji")
    with torch.no_grad():
        assert torch.equal(model(*inputs), emoji)
    with ga.disable_adapters(model), torch.no_grad():
        assert torch.equal(model(*inputs), base)
    with torch.no_grad():
        assert torch.equal(model(*inputs), emoji), "adapters come back after the block"
    with pytest.raises(ga.AdapterStateError, match="no adapter named 'faces'"):
        ga.set_adapter(model, "faces")

    model = ga.delete_adapter(model, "emoji")
    assert ga.adapter_names(model) == ["flowers"] and ga.active_adapter(model) == "flowers"
    model = ga.delete_adapter(model, "flowers")
    with torch.no_grad():
        assert torch.equal(model(*inputs), base)
    assert not any("gan_adapters" in k for k in model.state_dict())


def test_cbn_holds_several_target_classes_chosen_by_labels(dcgan):
    inputs = dcgan.example_inputs(batch=2)
    z = inputs[0][:1].repeat(2, 1, 1, 1)
    model = ga.inject(dcgan.model, kind="cbn", num_classes=3)
    _perturb(model, 0.3)
    with ga.condition(model, torch.tensor([0, 1])), torch.no_grad():
        mixed = model(z)
    with ga.condition(model, 1), torch.no_grad():
        all_one = model(z)
    assert not torch.allclose(mixed[0], mixed[1]), "same z, different classes"
    assert torch.equal(mixed[1], all_one[1])
    with pytest.raises(ga.AdapterStateError, match="needs labels"):
        model(z)
    with pytest.raises(ga.AdapterStateError, match="label 3 is out of range"), ga.condition(model, [0, 3]):
        pass
    with pytest.raises(ga.AdapterStateError, match="2 labels for a batch of 3"), ga.condition(model, [0, 1]):
        model(dcgan.example_inputs(batch=3)[0])


def test_cbn_with_one_class_equals_ssa(dcgan):
    inputs = dcgan.example_inputs()
    model = ga.inject(dcgan.model, kind="cbn", adapter_name="cbn")
    _perturb(model)
    model = ga.inject(model, kind="ssa", adapter_name="ssa")
    cbn = [m for m in model.modules() if isinstance(m, ga.ClassScaleShift)]
    ssa = [m for m in model.modules() if isinstance(m, ga.ScaleShift)]
    assert len(cbn) == len(ssa) == 4
    with torch.no_grad():
        for one_class, plain in zip(cbn, ssa, strict=True):
            plain.scale.copy_(one_class.scale[0])
            plain.shift.copy_(one_class.shift[0])
        ssa_out = model(*inputs)
        ga.set_adapter(model, "cbn")
        assert torch.equal(model(*inputs), ssa_out)


def test_merge_folds_scale_shift_into_batchnorm_exactly_where_it_can():
    model = randomize_norm_statistics(InlineNormGenerator()).eval()
    z = torch.randn(2, 8, 1, 1)
    adapted = ga.inject(model, kind="ssa")
    _perturb(adapted, 0.3)
    with torch.no_grad():
        expected = adapted(z)
    report = ga.merge(adapted)
    assert report.merged == ["stem_bn"]
    assert "inline batch_norm call" in report.skipped["block::batch_norm#0"]
    assert not hasattr(adapted.stem_bn, "gan_adapters")
    with torch.no_grad():
        torch.testing.assert_close(adapted(z), expected, rtol=1e-5, atol=1e-6)
    assert [r.site for r in ga.summary(adapted).rows] == ["block::batch_norm#0"]


def test_merge_of_every_site_leaves_a_plain_model(dcgan):
    inputs = dcgan.example_inputs()
    adapted = ga.inject(dcgan.model, kind="ssa")
    _perturb(adapted, 0.3)
    with torch.no_grad():
        expected = adapted(*inputs)
    report = ga.merge(adapted)
    assert len(report.merged) == 4 and not report.skipped
    assert not any("gan_adapters" in k for k in adapted.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(adapted(*inputs), expected, rtol=1e-4, atol=1e-5)


def test_merge_explains_what_cannot_fold():
    adapted = ga.inject(LabelNormGenerator().eval(), kind="apgc", group_size=4)
    report = ga.merge(adapted)
    assert not report.merged
    assert "mixes channels" in report.skipped["norm1"]
    adapted = ga.unload(adapted)
    adapted = ga.inject(adapted, kind="ssa")
    assert "computes its affine in its own forward" in ga.merge(adapted).skipped["norm1"]
    adapted = ga.inject(adapted, kind="ssa", adapter_name="second")
    with pytest.raises(ga.AdapterStateError, match="delete_adapter the others first"):
        ga.merge(adapted)
