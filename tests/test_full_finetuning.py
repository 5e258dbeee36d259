"""Full fine-tuning, the field's baseline, in the same harness: every generator parameter trains,
it resumes bit-exactly, its result loads and samples like an adapter run, and a sweep reports what
it trains and the size of its file."""

from __future__ import annotations

import torch

import gan_adapters as ga
from gan_adapters.adapted.run import load_run
from gan_adapters.evaluation.grid import Method
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.state import injection_state
from gan_adapters.training.trainables import is_full_weights
from gan_adapters.training.trainer import train
from tests.test_training import adapter_file_tensors, tiny_config
from tests.tiny_models import tiny_biggan_deep, tiny_dcgan


def test_every_parameter_trains_and_the_result_loads_as_the_fine_tuned_generator(tmp_path):
    result = train(tiny_config(method="full", lr=1e-3), tmp_path / "run")
    assert is_full_weights(result.paths.adapters)
    base = tiny_dcgan().model
    tensors = adapter_file_tensors(result.paths.adapters)
    weights = {k: v for k, v in tensors.items() if not k.startswith("extra/")}
    assert set(weights) == {k for k, v in base.state_dict().items() if v.is_floating_point()}
    assert all(
        not torch.equal(weights[k], base.state_dict()[k]) for k in ("0.weight", "3.weight", "9.weight")
    )
    run = load_run(result.paths.root, trust_code=True)
    assert injection_state(run.bundle.model) is None, "no adapters: the generator itself"
    for key, value in run.bundle.model.state_dict().items():
        if key in weights:
            assert torch.equal(value.cpu(), weights[key]), key
    images = ga.generate(run, ga.draw_latents(run, 3))
    assert images.shape == (3, 3, 16, 16) and torch.isfinite(images).all()


def test_full_fine_tuning_resumes_bit_exactly(tmp_path):
    whole = train(tiny_config(method="full", lr=1e-3), tmp_path / "whole")
    train(tiny_config(method="full", lr=1e-3, steps=6), tmp_path / "split")
    resumed = train(tiny_config(method="full", lr=1e-3), tmp_path / "split", resume=True)
    a, b = adapter_file_tensors(whole.paths.adapters), adapter_file_tensors(resumed.paths.adapters)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)


def test_a_class_conditional_generator_fine_tuned_in_full_keeps_its_learned_embedding(tmp_path):
    config = tiny_config(
        model="tiny_models:tiny_biggan_deep",
        adapter=AdapterConfig(kind="ssa"),
        method="full",
        steps=2,
        lr=1e-4,
    )
    result = train(config, tmp_path / "run")
    run = load_run(result.paths.root, trust_code=True)
    learned = adapter_file_tensors(result.paths.adapters)["extra/class_embedding"]
    assert torch.equal(run.bundle.model.embeddings.embedding.detach().cpu(), learned)
    assert not torch.equal(tiny_biggan_deep().model.embeddings.weight.mean(1), learned)


def test_a_sweep_method_can_be_full_fine_tuning():
    method = Method.from_entry({"kind": "ssa", "method": "full", "recipe": "adversarial"})
    assert method.label == "adversarial-full" and method.train == {"method": "full", "recipe": "adversarial"}
