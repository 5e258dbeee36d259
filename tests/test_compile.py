"""Injected models compile as one graph: no torch.compile graph break from hooks, slots or rewrites."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch._dynamo as dynamo
from generators import InlineNormGenerator, SharedNormGenerator
from kinds import every_kind

import gan_adapters as ga
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator


@pytest.mark.parametrize("options", every_kind(ratio=4), ids=str)
def test_dcgan_with_adapters_is_one_graph(dcgan, options):
    adapted = ga.inject(dcgan.model, **options)
    explanation = dynamo.explain(adapted)(*dcgan.example_inputs())
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_conditional_and_class_adapters_and_graph_sites_are_one_graph():
    generator = BigGANGenerator(BigGANConfig(resolution=32, ch=4, num_classes=5)).eval()
    adapted = ga.inject(generator, kind="apgc", ratio=2, conditional=True)
    assert dynamo.explain(adapted)(torch.randn(2, 120), torch.tensor([0, 1])).graph_break_count == 0
    labelled = ga.inject(ga.unload(adapted), kind="cbn", num_classes=3)
    with ga.condition(labelled, torch.tensor([0, 2])):
        assert dynamo.explain(labelled)(torch.randn(2, 120), torch.tensor([0, 1])).graph_break_count == 0
    for model in (SharedNormGenerator(), InlineNormGenerator()):
        adapted = ga.inject(model.eval(), kind="apgc", group_size=4)
        assert dynamo.explain(adapted)(torch.randn(2, 8, 1, 1)).graph_break_count == 0


def test_under_inductor_the_relu_fuses_into_the_adapters_last_pass():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from inspect_fusion import kernels

    fused, calls = kernels({"kind": "ssa"}, "never", "cpu")
    assert len(fused) == 1 and not calls, f"norm, scale/shift and ReLU in one kernel: {fused}"
    assert all(op in fused[0] for op in ("batch_norm", "addcmul", "relu"))
    fused, calls = kernels({"kind": "apgc", "group_size": 8}, "never", "cpu")
    assert calls == ["convolution"] and any("add" in k and "relu" in k for k in fused), (
        f"the residual add and the ReLU in one kernel after the grouped 1x1: {fused}"
    )
