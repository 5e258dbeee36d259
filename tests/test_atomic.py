"""A refused call leaves the model exactly as it was, and the adapter-file reader, fed damaged
files, only ever raises the project's own errors and never touches the model."""

from __future__ import annotations

import json
import random
import struct

import pytest
import torch
from corpus import PlainBigGAN
from safetensors.torch import load_file, save_file

import gan_adapters as ga
from gan_adapters.errors import UnknownAdapterError


def snapshot(model: torch.nn.Module) -> dict:
    """Everything a refused call must leave alone."""
    return {
        "class": type(model),
        "modules": [(name, type(m)) for name, m in model.named_modules()],
        "keys": list(model.state_dict()),
        "tensors": {k: v.clone() for k, v in model.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "hooks": {
            n: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._load_state_dict_post_hooks))
            for n, m in model.named_modules()
        },
        "attributes": {n: sorted(m.__dict__) for n, m in model.named_modules()},
        "forward": {n: type(m).forward for n, m in model.named_modules()},
    }


def assert_unchanged(model: torch.nn.Module, before: dict, what: str = "") -> None:
    after = snapshot(model)
    for key in ("class", "modules", "keys", "requires_grad", "hooks", "attributes", "forward"):
        assert after[key] == before[key], f"{what}: {key} changed"
    for name, tensor in before["tensors"].items():
        assert torch.equal(after["tensors"][name], tensor), f"{what}: {name}"


def fresh() -> torch.nn.Module:
    torch.manual_seed(0)
    return PlainBigGAN().eval()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(adapter_name=""), ga.ConfigError, "not usable"),
        (dict(adapter_name="a.b"), ga.ConfigError, "without dots"),
        (dict(adapter_name="active"), ga.ConfigError, "reserved"),
        (dict(adapter_name="_private"), ga.ConfigError, "not usable"),
        (
            dict(kind="apgc", groups=8),
            ga.SiteError,
            "does not divide the 4 channels",
        ),  # fails at a later site
        (dict(kind="apgc", group_size=3), ga.SiteError, "does not divide"),
        (dict(kind="nope"), ga.ConfigError, "unknown adapter kind"),
        (dict(route="export"), ga.ConfigError, "needs example_inputs"),
        (dict(targets="NoSuchLayer"), ga.SiteError, "targets= entry .NoSuchLayer. matches no module"),
        (dict(exclude=[r"blocks\.9"]), ga.SiteError, "exclude= entry .*matches no module.*nearest.*blocks.1"),
    ],
)
def test_a_refused_inject_leaves_the_model_untouched(options, error, match):
    model = fresh()
    before = snapshot(model)
    with pytest.raises(error, match=match):
        ga.inject(model, **options)
    assert_unchanged(model, before)


def test_a_refused_second_adapter_leaves_the_first_as_it_was():
    model = ga.inject(fresh(), kind="ssa", adapter_name="first")
    before = snapshot(model)
    for options, error in (
        (dict(adapter_name="first"), ga.AdapterStateError),
        (dict(kind="apgc", groups=8), ga.SiteError),
    ):
        with pytest.raises(error):
            ga.inject(model, **options)
        assert_unchanged(model, before)
    with pytest.raises(UnknownAdapterError, match="no adapter named 'second'; this model has: first"):
        ga.set_adapter(model, "second")
    with pytest.raises(UnknownAdapterError, match="no adapter named 'second'"):
        ga.delete_adapter(model, "second")
    with pytest.raises(UnknownAdapterError):
        ga.summary(model, "second")
    with pytest.raises(UnknownAdapterError):
        ga.save_adapters(model, "unused.safetensors", adapter_name="second")
    assert_unchanged(model, before)


@pytest.fixture
def adapter_file(tmp_path):
    model = ga.inject(fresh(), kind="apgc", group_size=4)
    with torch.no_grad():
        for p in ga.trainable_parameters(model):
            p.add_(0.1)
    return ga.save_adapters(model, tmp_path / "domain.safetensors")


def _rewrite(source, target, tensors=None, **metadata_changes):
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    metadata = {k: v for k, v in (metadata | metadata_changes).items() if v is not None}
    save_file(tensors if tensors is not None else load_file(str(source)), str(target), metadata=metadata)
    return target


def test_damaged_adapter_files_are_refused_before_the_model_changes(adapter_file, tmp_path):
    tensors = load_file(str(adapter_file))
    first = next(iter(tensors))
    bad = {
        "wrong version": (
            _rewrite(adapter_file, tmp_path / "v.st", format_version="9"),
            "format version '9'",
        ),
        "damaged config": (_rewrite(adapter_file, tmp_path / "c.st", config="{not json"), "not valid JSON"),
        "config of the wrong type": (
            _rewrite(adapter_file, tmp_path / "t.st", config=json.dumps({"kind": "apgc", "groups": "eight"})),
            "damaged adapter config",
        ),
        "malformed sites": (
            _rewrite(adapter_file, tmp_path / "s.st", sites=json.dumps([["a", "b"]])),
            "damaged site list",
        ),
        "sites not a list": (_rewrite(adapter_file, tmp_path / "l.st", sites="7"), "damaged site list"),
        "dotted name": (_rewrite(adapter_file, tmp_path / "n.st", adapter_name="a.b"), "without dots"),
        "empty name": (_rewrite(adapter_file, tmp_path / "e.st", adapter_name=""), "not usable"),
        "slot attribute as name": (
            _rewrite(adapter_file, tmp_path / "r.st", adapter_name="enabled"),
            "reserved",
        ),
        "wrong shape": (
            _rewrite(adapter_file, tmp_path / "w.st", tensors | {first: torch.zeros(3)}),
            "has shape",
        ),
        "integer tensor": (
            _rewrite(adapter_file, tmp_path / "i.st", tensors | {first: tensors[first].long()}),
            "not finite floating-point",
        ),
        "NaN values": (
            _rewrite(adapter_file, tmp_path / "nan.st", tensors | {first: tensors[first] * float("nan")}),
            "not finite",
        ),
        "missing tensor": (
            _rewrite(adapter_file, tmp_path / "m.st", {k: v for k, v in tensors.items() if k != first}),
            "missing",
        ),
        "not our format": (
            _rewrite(adapter_file, tmp_path / "f.st", format="something-else"),
            "not a gan-adapters adapter file",
        ),
    }
    for what, (path, match) in bad.items():
        model = fresh()
        before = snapshot(model)
        with pytest.raises(ga.GanAdaptersError, match=match):
            ga.load_adapters(model, path)
        assert_unchanged(model, before, what)
    other = ga.save_adapters(
        ga.inject(PlainBigGAN(ch=8), kind="apgc", group_size=4), tmp_path / "other.safetensors"
    )
    model = fresh()
    before = snapshot(model)
    with pytest.raises(
        ga.MismatchError, match=r"site #0 is 'blocks.0.bn1' \(PlainConditionalBN, 16 channels\) in the file"
    ):
        ga.load_adapters(model, other)
    assert_unchanged(model, before)


def test_fuzzed_adapter_files_raise_only_our_errors_and_never_touch_the_model(adapter_file, tmp_path):
    data = adapter_file.read_bytes()
    header = struct.unpack("<Q", data[:8])[0]
    rng = random.Random(0)
    model = fresh()
    before = snapshot(model)
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(150):
        damaged = bytearray(data)
        mode = trial % 4
        if mode == 0:  # byte flips anywhere
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        elif mode == 1:  # truncation
            damaged = damaged[: rng.randrange(len(damaged))]
        elif mode == 2:  # a huge declared header size
            damaged[:8] = struct.pack("<Q", rng.choice([2**40, 2**63 - 1, header + rng.randint(1, 10**6)]))
        else:  # flips inside the JSON header (metadata, dtypes, shapes, offsets)
            for _ in range(rng.randint(1, 4)):
                damaged[8 + rng.randrange(header)] = rng.randrange(32, 127)
        path = tmp_path / f"fuzz-{trial}.safetensors"
        path.write_bytes(bytes(damaged))
        try:
            loaded = ga.load_adapters(model, path)
        except ga.GanAdaptersError:
            outcomes["refused"] += 1
            assert_unchanged(model, before)
        else:  # a flip that left everything valid: the model took the adapter; put it back
            outcomes["loaded"] += 1
            model = ga.unload(loaded)
            assert_unchanged(model, before)
    assert outcomes["refused"] > 100, outcomes


def test_load_refuses_a_name_already_taken_without_change(adapter_file):
    model = ga.inject(fresh(), kind="ssa")  # holds 'default', as does the file
    before = snapshot(model)
    with pytest.raises(ga.AdapterStateError, match="already has an adapter named .default."):
        ga.load_adapters(model, adapter_file)
    assert_unchanged(model, before)
    ga.load_adapters(model, adapter_file, adapter_name="emoji")
    assert ga.adapter_names(model) == ["default", "emoji"]
