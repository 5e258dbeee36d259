"""Adapters as small safetensors files: round trip, size, refusal of a wrong base, unload."""

from __future__ import annotations

import json

import pytest
import torch
from generators import SharedNormGenerator, randomize_norm_statistics
from safetensors import safe_open
from safetensors.torch import save_file

import gan_adapters as ga
from gan_adapters.generators.registry import load_generator


def _train_a_little(model, inputs):
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(torch.randn_like(param) * 0.05)


def test_save_load_round_trip_gives_identical_outputs(dcgan, tmp_path):
    inputs = dcgan.example_inputs(batch=2)
    adapted = ga.inject(dcgan.model, kind="apgc", ratio=8)
    _train_a_little(adapted, inputs)
    with torch.no_grad():
        expected = adapted(*inputs)
    path = ga.save_adapters(adapted, tmp_path / "emoji.safetensors")
    assert path.stat().st_size < 100_000, "a whole new domain in under 100 KB"

    fresh = load_generator("dcgan-faces").model
    loaded = ga.load_adapters(fresh, path)
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), expected)
    assert ga.summary(loaded).adapter_parameters == ga.summary(adapted).adapter_parameters


def test_file_holds_only_adapter_tensors_and_json_metadata(dcgan, tmp_path):
    adapted = ga.inject(dcgan.model, kind="ssa")
    path = ga.save_adapters(adapted, tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        keys = sorted(handle.keys())
        metadata = handle.metadata()
    assert keys == sorted(
        f"{site}/{p}" for site in ("main.1", "main.4", "main.7", "main.10") for p in ("scale", "shift")
    )
    assert json.loads(metadata["config"])["kind"] == "ssa"
    assert json.loads(metadata["sites"])[0] == ["main.1", 512, "BatchNorm2d"]
    assert not list(tmp_path.glob(".a.safetensors.*")), "no temporary file left behind"


def test_graph_call_sites_round_trip(tmp_path):
    model = randomize_norm_statistics(SharedNormGenerator()).eval()
    z = torch.randn(2, 8, 1, 1)
    adapted = ga.inject(model, kind="apgc", group_size=2)
    _train_a_little(adapted, (z,))
    with torch.no_grad():
        expected = adapted(z)
    path = ga.save_adapters(adapted, tmp_path / "shared.safetensors")
    fresh = SharedNormGenerator().eval()
    fresh.load_state_dict(ga.unload(adapted).state_dict())
    loaded = ga.load_adapters(fresh, path)
    with torch.no_grad():
        assert torch.equal(loaded(z), expected)


def test_mismatched_base_is_refused_naming_the_first_difference(dcgan, tmp_path):
    path = ga.save_adapters(ga.inject(dcgan.model, kind="ssa"), tmp_path / "a.safetensors")
    from gan_face_generate.models import Generator

    narrower = Generator(ngpu=0, nc=3, nz=100, ngf=32)
    with pytest.raises(
        ga.MismatchError,
        match=r"site #0 is 'main.1' \(BatchNorm2d, 512 channels\) in the file "
        r"but 'main.1' \(BatchNorm2d, 256 channels\)",
    ):
        ga.load_adapters(narrower, path)
    assert not hasattr(narrower.main[1], "gan_adapters"), "a refused load leaves the model untouched"

    other = SharedNormGenerator()
    with pytest.raises(ga.MismatchError, match="does not fit this model"):
        ga.load_adapters(other, path)


def test_files_that_are_not_adapter_files_are_refused(dcgan, tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(ga.GanAdaptersError, match="not a gan-adapters adapter file"):
        ga.load_adapters(dcgan.model, plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ga.GanAdaptersError, match="not a readable .safetensors file"):
        ga.load_adapters(dcgan.model, junk)
    with pytest.raises(ga.GanAdaptersError, match="no adapter file at"):
        ga.load_adapters(dcgan.model, tmp_path / "missing.safetensors")


def test_unload_restores_outputs_and_keys_and_original_checkpoint_still_loads(dcgan):
    model = dcgan.model
    inputs = dcgan.example_inputs()
    original_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        reference = model(*inputs)
    adapted = ga.inject(model, kind="apgc", groups=4)
    _train_a_little(adapted, inputs)
    result = adapted.load_state_dict(original_state)  # strict: the original checkpoint loads
    assert result.missing_keys == [] and result.unexpected_keys == []
    restored = ga.unload(adapted)
    assert list(restored.state_dict()) == list(original_state)
    assert all(p.requires_grad for p in restored.parameters()), "unload restores requires_grad"
    with torch.no_grad():
        assert torch.equal(restored(*inputs), reference)
    with pytest.raises(ga.AdapterStateError, match="has no adapters"):
        ga.unload(restored)


def test_unload_restores_requires_grad_of_a_partly_frozen_model():
    from tiny_models import tiny_dcgan

    model = tiny_dcgan().model
    model[0].requires_grad_(False)  # the user froze the first layer before injecting
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    assert not all(before.values()) and any(before.values())
    base = ga.unload(ga.inject(model, kind="apgc", group_size=4))
    assert {name: p.requires_grad for name, p in base.named_parameters()} == before
