"""Bad input gets a specific project exception; configs round-trip to JSON and TOML."""

from __future__ import annotations

import pytest
import torch
from generators import BigGANStyleGenerator
from torch import nn

import gan_adapters as ga
from gan_adapters.surgery.config import AdapterConfig


def test_unknown_kind(dcgan):
    with pytest.raises(
        ga.ConfigError, match=r"unknown adapter kind 'lora'; known kinds: apc, apgc, cbn, ssa"
    ):
        ga.inject(dcgan.model, kind="lora")


def test_two_sizes_at_once(dcgan):
    with pytest.raises(ga.ConfigError, match="give at most one adapter size, got groups=8, ratio=4"):
        ga.inject(dcgan.model, kind="apgc", groups=8, ratio=4)


def test_size_for_a_kind_without_one(dcgan):
    with pytest.raises(ga.ConfigError, match="kind 'ssa' takes no `groups` .`groups` belongs to kind 'apgc'"):
        ga.inject(dcgan.model, kind="ssa", groups=2)


def test_ratio_that_is_not_a_whole_group_size(dcgan):
    with pytest.raises(ga.ConfigError, match="must be a whole number"):
        ga.inject(dcgan.model, kind="apgc", ratio=1.25)


def test_group_count_that_does_not_divide_a_layer_names_it(dcgan):
    with pytest.raises(ga.SiteError, match=r"groups=3 does not divide the 512 channels of layer 'main.1'"):
        ga.inject(dcgan.model, kind="apgc", groups=3)
    assert not hasattr(dcgan.model.main[1], "gan_adapters"), "nothing was changed"


def test_group_size_that_does_not_divide_a_layer_names_it():
    model = BigGANStyleGenerator(ch=3, resolution=16, dim_z=12, shared_dim=8, n_classes=5)
    with pytest.raises(
        ga.SiteError, match=r"group size 4 does not divide the 6 channels of layer 'blocks.0.bn1'"
    ):
        ga.inject(model, kind="apgc", group_size=4)


def test_no_sites_says_what_was_searched_and_suggests_targets():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    with pytest.raises(ga.SiteError) as info:
        ga.inject(model, kind="ssa")
    message = str(info.value)
    assert "no adapter sites found in Sequential" in message
    assert "BatchNorm/InstanceNorm modules" in message and "targets=" in message
    assert "Linear x2" in message


def test_bad_target_pattern_and_route():
    model = nn.Sequential(nn.BatchNorm2d(4))
    with pytest.raises(ga.ConfigError, match="not a class name nor a valid regex"):
        ga.inject(model, kind="ssa", targets=["(unclosed"])
    with pytest.raises(ga.ConfigError, match="route must be one of"):
        ga.inject(model, kind="ssa", route="magic")
    with pytest.raises(ga.ConfigError, match="needs example_inputs"):
        ga.inject(model, kind="ssa", route="export")


def test_second_adapter_with_the_same_name_and_operations_without_adapters(dcgan):
    model = ga.inject(dcgan.model, kind="ssa")
    with pytest.raises(ga.AdapterStateError, match="already has an adapter named 'default'"):
        ga.inject(model, kind="ssa")
    plain = nn.Sequential(nn.BatchNorm1d(3))
    for call in (ga.summary, ga.unload, ga.merge, lambda m: ga.save_adapters(m, "x.safetensors")):
        with pytest.raises(ga.AdapterStateError, match="has no adapters: call gan_adapters.inject"):
            call(plain)


def test_condition_on_a_non_cbn_adapter_and_bad_labels(dcgan):
    model = ga.inject(dcgan.model, kind="ssa")
    with (
        pytest.raises(ga.AdapterStateError, match="the active adapter 'default' is 'ssa'"),
        ga.condition(model, [0]),
    ):
        pass
    model = ga.inject(model, kind="cbn", num_classes=2, adapter_name="classes")
    with (
        pytest.raises(ga.AdapterStateError, match="labels must be integers"),
        ga.condition(model, torch.tensor([0.5])),
    ):
        pass


def test_a_setting_of_another_kind_is_refused_naming_its_owner():
    with pytest.raises(
        ga.ConfigError, match="kind 'ssa' takes no `num_classes` .`num_classes` belongs to kind 'cbn'"
    ):
        AdapterConfig(kind="ssa", num_classes=3)
    with pytest.raises(ga.ConfigError, match="`ratio` belongs to kind 'apgc'.*its own settings: bias$"):
        AdapterConfig(kind="apc", ratio=2)


def test_files_written_before_kinds_owned_their_settings_still_load():
    """Such files list every kind's setting at its default (`groups: null` in an ssa file)."""
    old = {"kind": "ssa", "groups": None, "group_size": None, "ratio": None, "bias": False, "num_classes": 1}
    assert AdapterConfig.from_dict(old) == AdapterConfig(kind="ssa")
    with pytest.raises(ga.ConfigError, match="takes no `bias`"):
        AdapterConfig.from_dict(old | {"bias": True})


@pytest.mark.parametrize(
    "config",
    [
        AdapterConfig(),
        AdapterConfig(
            kind="apgc", groups=8, targets=["Conv2DMod", r"blocks\.\d+"], exclude=["to_rgb"], bias=True
        ),
        AdapterConfig(kind="cbn", num_classes=4, conditional=True, train_norm=True, route="module"),
        AdapterConfig(kind="apgc", ratio=2.5),
    ],
)
def test_config_round_trips_json_and_toml(config, tmp_path):
    assert AdapterConfig.from_json(config.to_json()) == config
    assert AdapterConfig.from_toml(config.to_toml()) == config
    path = tmp_path / "adapter.toml"
    path.write_text(config.to_toml())
    assert AdapterConfig.from_toml(path) == config


def test_config_refuses_unknown_keys():
    with pytest.raises(ga.ConfigError, match="unknown adapter config keys: rank"):
        AdapterConfig.from_dict({"kind": "ssa", "rank": 4})
