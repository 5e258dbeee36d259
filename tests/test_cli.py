"""The `gan-adapters` console script, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import gan_adapters as ga
from gan_adapters.generators.registry import load_generator

SCRIPT = str(Path(sys.executable).parent / "gan-adapters")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )


def test_inspect_prints_the_table_and_writes_the_files(tmp_path):
    adapter, summary_json = tmp_path / "a.safetensors", tmp_path / "summary.json"
    result = run(
        "inspect",
        "dcgan-faces",
        "--kind",
        "apgc",
        "--ratio",
        "8",
        "--save",
        str(adapter),
        "--json",
        str(summary_json),
    )
    assert result.returncode == 0, result.stderr
    assert "main.10" in result.stdout and "15,360 adapter parameters = 8.00x ssa" in result.stdout
    data = json.loads(summary_json.read_text())
    assert data["adapter_parameters"] == 15_360 and len(data["rows"]) == 4
    model = ga.load_adapters(load_generator("dcgan-faces").model, adapter)
    assert ga.summary(model).adapter_parameters == 15_360


def test_inspect_with_targets_on_stylegan2():
    result = run("inspect", "stylegan2-lucidrains", "-k", "ssa", "-t", "Conv2DMod", "--route", "module")
    assert result.returncode == 0, result.stderr
    assert "Conv2DMod" in result.stdout and "blocks.0.to_rgb.conv" in result.stdout


def test_bad_input_is_one_clear_line_not_a_traceback():
    result = run("inspect", "dcgan-faces", "--kind", "apgc", "--groups", "3")
    assert result.returncode == 2
    assert "error: --groups 3 does not divide the 512 channels of layer 'main.1'" in " ".join(
        result.stderr.split()
    )
    assert "Traceback" not in result.stderr
    unknown = run("inspect", "no-such-model")
    assert unknown.returncode == 2 and "unknown model 'no-such-model'" in unknown.stderr


def test_help_teaches_and_models_lists_the_registry():
    result = run("inspect", "--help")
    assert result.returncode == 0 and "--ratio" in result.stdout and "Example:" in result.stdout
    listing = run("models")
    assert listing.returncode == 0 and "dcgan-faces" in listing.stdout and "biggan-deep-128" in listing.stdout


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "gan_adapters", "models"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "stylegan2-lucidrains" in result.stdout


def test_errors_speak_the_users_terms(tmp_path, monkeypatch):
    """Flags, not keyword names, on the command line; a bare module told to become a bundle; a
    file for another generator is a mismatch; a missing path or tracker package says so."""
    from test_training_cli import cli

    excluded = cli("inspect", "dcgan-faces", "-x", "main.99")
    assert excluded.returncode == 2 and "-x/--exclude entry 'main.99' matches no module" in excluded.stderr
    assert "exclude=" not in excluded.stderr
    missing = cli("eval", str(tmp_path / "nope"), str(tmp_path))
    assert (
        missing.returncode == 2
        and "no such file or folder" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    bare = tmp_path / "bare.py"
    bare.write_text("import corpus\ndef make():\n    return corpus.FastGANStyle()\n")
    refused = cli("inspect", f"{bare}:make", "-t", r"up\.4", "-k", "ssa")
    assert refused.returncode == 2 and "return a gan_adapters.GeneratorBundle" in " ".join(
        refused.stderr.split()
    )

    from corpus import PlainBigGAN
    from tiny_models import tiny_dcgan

    path = ga.save_adapters(
        ga.inject(PlainBigGAN(), kind="ssa", targets=[r"blocks\.\d+\.bn1"]), tmp_path / "a.safetensors"
    )
    with pytest.raises(ga.MismatchError, match="a.safetensors does not fit Sequential"):
        ga.load_adapters(tiny_dcgan().model, path)

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a)
    )
    with pytest.raises(ga.ConfigError, match=r"pip install 'gan-adapters\[tracking\]'"):
        ga.TrainConfig(data="x", log_with=["tensorboard"])


def test_models_lists_the_shipped_source_and_inspect_shows_its_conditional_bn_sites():
    listing = run("models")
    assert listing.returncode == 0 and "cdcgan-emoji-32" in listing.stdout
    shown = run("inspect", "cdcgan-emoji-32", "-k", "apgc", "--ratio", "8")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("ConditionalBatchNorm2d") == 3 and "4 sites" in shown.stdout
