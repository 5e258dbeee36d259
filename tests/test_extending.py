"""Extending the library is what docs/design.md says: the "add a kind" recipe, run as written from
a test file, works through `inject`, a saved file and the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import gan_adapters as ga
from gan_adapters.cli.app import main
from gan_adapters.surgery import ADAPTER_KINDS
from tests.tiny_models import tiny_dcgan

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def recipe(heading: str) -> str:
    """The first Python block under a heading of docs/design.md."""
    section = DESIGN.read_text().split(f"## {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def bias_kind():
    exec(recipe("Add an adapter kind"), {})
    yield ADAPTER_KINDS["bias"]


def inspect_cli(capsys, *options: str) -> tuple[int, str, str]:
    """`gan-adapters inspect tiny_models:tiny_dcgan OPTIONS` in-process: (exit code, out, err)."""
    with pytest.raises(SystemExit) as stopped:
        main(["inspect", "tiny_models:tiny_dcgan", *options])
    captured = capsys.readouterr()
    return stopped.value.code, " ".join(captured.out.split()), " ".join(captured.err.split())


def test_the_documented_kind_and_its_setting_work_through_inject_and_a_file(bias_kind, tmp_path):
    model = ga.inject(tiny_dcgan().model, kind="bias", share=4)
    assert ga.summary(model).adapter_parameters == (32 + 16 + 8) // 4, "C / share parameters per norm"
    assert ga.summary(model).settings == {"share": 4}
    z = torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        identity = model(z)
        for param in ga.trainable_parameters(model):
            param.add_(0.1)
        changed = model(z)
    assert not torch.equal(identity, changed)
    path = ga.save_adapters(model, tmp_path / "bias.safetensors")
    loaded = ga.load_adapters(tiny_dcgan().model, path)
    assert ga.summary(loaded).settings == {"share": 4}, "the file keeps the kind's own setting"
    with torch.no_grad():
        assert torch.equal(loaded(z), changed)
    assert ga.AdapterConfig.from_toml(ga.AdapterConfig(kind="bias", share=2).to_toml()).settings.share == 2


def test_the_kind_validates_its_own_setting_before_the_model_changes(bias_kind):
    model = tiny_dcgan().model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ga.ConfigError, match="share must be at least 1, got 0"):
        ga.inject(model, kind="bias", share=0)
    with pytest.raises(ga.SiteError, match="share=3 does not divide the 32 channels"):
        ga.inject(model, kind="bias", share=3)
    with pytest.raises(ga.ConfigError, match="kind 'ssa' takes no `share` .`share` belongs to kind 'bias'"):
        ga.inject(model, kind="ssa", share=2)
    assert not hasattr(model, "gan_adapters") and model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_kind_and_its_flag_work_on_the_command_line(bias_kind, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    saved = tmp_path / "cli.safetensors"
    code, out, err = inspect_cli(capsys, "--kind", "bias", "--share", "2", "--save", str(saved))
    assert code == 0, err
    assert "28 adapter parameters" in out
    assert ga.summary(ga.load_adapters(tiny_dcgan().model, saved)).settings == {"share": 2}
    code, _, err = inspect_cli(capsys, "--kind", "bias", "--share", "0")
    assert code == 2 and "--share" in err and "must be at least 1" in err
    code, _, err = inspect_cli(capsys, "--kind", "ssa", "--share", "2")
    assert code == 2 and "kind 'ssa' takes no --share" in err, err


def test_an_installed_plugin_brings_its_kind_to_the_command_line(tmp_path, capsys, monkeypatch):
    """A package that lists its module under the `gan_adapters.plugins` entry points: the CLI
    imports it at start, so its kind and flag are there without any import by the user."""
    (tmp_path / "plugged_kinds.py").write_text(recipe("Add an adapter kind").replace('"bias"', '"plugged"'))
    info = tmp_path / "plugged_kinds-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugged-kinds\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gan_adapters.plugins]\nplugged = plugged_kinds\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert "plugged" not in ADAPTER_KINDS
    code, out, err = inspect_cli(capsys, "--kind", "plugged", "--share", "8")
    assert code == 0, err
    assert "7 adapter parameters" in out


def test_a_broken_plugin_is_named_in_one_line(tmp_path, capsys, monkeypatch):
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gan_adapters.plugins]\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = inspect_cli(capsys, "--kind", "ssa")
    assert code == 2
    assert "the plugin 'broken' of broken-plugin (no_such_module_here) failed to import" in err


def test_an_unknown_kind_is_refused_naming_the_registered_ones(capsys):
    code, _, err = inspect_cli(capsys, "--kind", "nope")
    assert code == 2
    assert "'nope' is not one of 'apc', 'apgc', 'cbn', 'ssa'" in err
