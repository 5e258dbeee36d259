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


def test_the_documented_kind_works_through_inject_a_file_and_the_cli(
    bias_kind, tmp_path, capsys, monkeypatch
):
    model = ga.inject(tiny_dcgan().model, kind="bias")
    assert ga.summary(model).adapter_parameters == 32 + 16 + 8, "C parameters per BatchNorm"
    z = torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        identity = model(z)
        for param in ga.trainable_parameters(model):
            param.add_(0.1)
        changed = model(z)
    assert not torch.equal(identity, changed)
    path = ga.save_adapters(model, tmp_path / "bias.safetensors")
    loaded = ga.load_adapters(tiny_dcgan().model, path)
    with torch.no_grad():
        assert torch.equal(loaded(z), changed)

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "inspect",
                "tiny_models:tiny_dcgan",
                "--kind",
                "bias",
                "--save",
                str(tmp_path / "cli.safetensors"),
            ]
        )
    assert stopped.value.code == 0, capsys.readouterr().err
    assert "56 adapter parameters" in " ".join(capsys.readouterr().out.split())
    assert isinstance(ga.load_adapters(tiny_dcgan().model, tmp_path / "cli.safetensors"), torch.nn.Module)


def test_an_unknown_kind_is_refused_naming_the_registered_ones(capsys):
    with pytest.raises(SystemExit):
        main(["inspect", "tiny_models:tiny_dcgan", "--kind", "nope"])
    err = capsys.readouterr().err
    assert "--kind names an unknown adapter kind 'nope'; known kinds: apc, apgc, cbn, ssa" in err
