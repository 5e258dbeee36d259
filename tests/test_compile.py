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


@pytest.mark.parametrize(
    "kind", [dict(kind="apgc", group_size=4), dict(kind="apc"), dict(kind="ssa")], ids=str
)
def test_an_injected_model_stays_one_graph_across_batch_sizes(kind):
    """A second batch size makes dynamo's shapes symbolic; the path lookup must still be a constant."""
    generator = BigGANGenerator(BigGANConfig(resolution=32, ch=4, num_classes=5)).eval()
    adapted = ga.inject(generator, **kind)
    dynamo.reset()
    compiled = torch.compile(adapted, fullgraph=True, backend="eager")
    with torch.no_grad():
        for batch in (2, 3, 5):
            z, labels = torch.randn(batch, 120), torch.arange(batch) % 5
            assert torch.allclose(compiled(z, labels), adapted(z, labels), atol=1e-5)


def test_several_compiled_runs_in_one_process_all_compile(tmp_path, caplog):
    """Each compiled train() starts from a fresh dynamo cache: without it the fourth run hits the
    recompile limit (grad mode and the model change between runs) and silently runs eager."""
    from test_training import tiny_config

    from gan_adapters.training.trainer import train

    dynamo.reset()
    for run in range(4):
        before = dynamo.utils.counters["stats"]["unique_graphs"]
        train(tiny_config(steps=2, compile=True, sample_every=100), tmp_path / f"run{run}")
        assert dynamo.utils.counters["stats"]["unique_graphs"] > before, f"run {run} compiled nothing"
    assert "recompile_limit" not in caplog.text
