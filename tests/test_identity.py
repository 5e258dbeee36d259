"""Every kind and size starts as the exact identity, can move away from it, and alone trains."""

from __future__ import annotations

import pytest
import torch
from generators import (
    BigGANStyleGenerator,
    InlineNormGenerator,
    LabelNormGenerator,
    SharedNormGenerator,
    randomize_norm_statistics,
)
from kinds import every_kind

import gan_adapters as ga

KINDS = [
    *every_kind(ratio=1),  # every registered kind; then the sizes and options
    dict(kind="apc", bias=True),
    dict(kind="apgc", groups=2),
    dict(kind="apgc", group_size=2),
    dict(kind="apgc", ratio=2, bias=True),
    dict(kind="ssa", conditional=True),
    dict(kind="apgc", group_size=4, conditional=True),
]


def _cases():
    def biggan_style():
        model = BigGANStyleGenerator(ch=4, resolution=16, dim_z=12, shared_dim=8, n_classes=5)
        y = model.shared(torch.tensor([1, 3])).detach()
        return model, (torch.randn(2, 12), y)

    def label_norm():
        return LabelNormGenerator(ch=8), (torch.randn(2, 8), torch.tensor([0, 2]))

    def inline_norm():
        return InlineNormGenerator(ch=8), (torch.randn(2, 8, 1, 1),)

    def shared_norm():
        return SharedNormGenerator(ch=8), (torch.randn(2, 8, 1, 1),)

    return {
        "biggan-style": biggan_style,
        "label-norm": label_norm,
        "inline-norm": inline_norm,
        "shared-norm": shared_norm,
    }


CASES = _cases()


@pytest.mark.parametrize("options", KINDS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("case", list(CASES))
def test_identity_then_perturbation_then_gradients(case, options):
    model, inputs = CASES[case]()
    model = randomize_norm_statistics(model).eval()
    with torch.no_grad():
        reference = model(*inputs)
    adapted = ga.inject(model, **options)
    with torch.no_grad():
        assert torch.equal(adapted(*inputs), reference), "a fresh adapter must be the exact identity"

    trainable = ga.trainable_parameters(adapted)
    adapter_ids = {
        id(p) for slot in adapted.modules() if isinstance(slot, ga.Adapter) for p in slot.parameters()
    }
    assert trainable and {id(p) for p in trainable} == adapter_ids

    adapted(*inputs).square().mean().backward()
    for name, param in adapted.named_parameters():
        if id(param) in adapter_ids:
            assert param.grad is not None, f"no gradient reached adapter parameter {name}"
        else:
            assert param.grad is None, f"frozen parameter {name} received a gradient"

    with torch.no_grad():
        for param in trainable:
            param.add_(torch.randn_like(param) * 0.1)
        assert not torch.equal(adapted(*inputs), reference), "perturbed adapters must change the output"


def test_conditional_adapter_reads_the_layers_condition():
    model = randomize_norm_statistics(LabelNormGenerator(ch=8, n_classes=3)).eval()
    adapted = ga.inject(model, kind="ssa", conditional=True)
    for adapter in (m for m in adapted.modules() if isinstance(m, ga.Adapter)):
        assert isinstance(adapter.condition_fc, torch.nn.Embedding)
        with torch.no_grad():
            adapter.condition_fc.weight[1].normal_(0, 0.5)  # only class 1 is modulated
    z, labels = torch.randn(2, 8), torch.tensor([0, 1])
    with torch.no_grad():
        out = adapted(z, labels)
        with ga.disable_adapters(adapted):
            base = adapted(z, labels)
    assert torch.equal(out[0], base[0]), "class 0 has a zero modulation: unchanged"
    assert not torch.allclose(out[1], base[1]), "class 1 is modulated through the layer's own label"
