"""Smoke runs of every example: a few steps, offline, asserting each writes what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from test_training import EMOJI
from test_training_cli import env

import gan_adapters as ga

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(EXAMPLES / script), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_dcgan_example(tmp_path):
    out = tmp_path / "dcgan"
    result = run_example("dcgan/adapt_dcgan.py", "--steps", "3", "--out", str(out))
    assert (out / "adapters.safetensors").exists() and (out / "example-samples.png").exists()
    assert "15,360 adapter parameters" in result.stdout


def test_biggan_example_prints_the_parameter_table_and_trains_a_tiny_model(tmp_path):
    out = tmp_path / "biggan"
    result = run_example(
        "biggan/adapt_biggan_deep.py",
        "--random-weights",
        "--tiny",
        "--ratio",
        "1",
        "--steps",
        "2",
        "--images",
        "4",
        "--out",
        str(out),
    )
    table = " ".join(result.stdout.split())
    for label in ("ssa (Noguchi-Harada)", "apgc ratio 1", "apgc ratio 8", "apc (no grouping)"):
        assert label in table
    ssa_row = re.search(r"ssa \(Noguchi-Harada\)\W+(\d+)\W+([\d,]+)\W+1\b", table)
    assert ssa_row and ssa_row.groups() == ("40", "41,216"), "40 conditional BN sites, 2 x 20,608 channels"
    for name in ("adapters.safetensors", "example-samples.png", "example-interpolation.png"):
        assert (out / name).exists(), name
    with safe_open(str(out / "adapters.safetensors"), framework="pt") as handle:
        assert handle.get_tensor("extra/class_embedding").shape == (8,), "one learned class embedding"


def test_stylegan2_example(tmp_path):
    out = tmp_path / "sg2"
    result = run_example(
        "stylegan2/adapt_stylegan2.py",
        "--steps",
        "2",
        "--image-size",
        "32",
        "--images",
        "4",
        "--out",
        str(out),
    )
    assert "Conv2DMod" in result.stdout and (out / "example-samples.png").exists()


FAKE_BIGGAN_MODULE = '''
import sys
sys.path.insert(0, {tests!r})
from generators import BigGANStyleGenerator


class Generator(BigGANStyleGenerator):
    """Stands in for BigGAN-PyTorch's BigGAN.Generator: same constructor names, same layers."""

    def __init__(
        self, G_ch, dim_z, resolution, G_attn, n_classes, shared_dim, hier, G_shared, skip_init, no_optim
    ):
        super().__init__(
            ch=G_ch, resolution=resolution, dim_z=dim_z, shared_dim=shared_dim, n_classes=n_classes
        )
'''


def test_ajbrock_loader_with_a_clone_shaped_folder(tmp_path):
    sys.path.insert(0, str(EXAMPLES / "biggan"))
    try:
        from ajbrock_loader import load_biggan_pytorch
    finally:
        sys.path.pop(0)
    clone = tmp_path / "BigGAN-PyTorch"
    clone.mkdir()
    (clone / "BigGAN.py").write_text(FAKE_BIGGAN_MODULE.format(tests=str(Path(__file__).parent)))
    options = dict(repo=str(clone), resolution=16, G_ch=4, dim_z=12, shared_dim=8, n_classes=5)
    reference = load_biggan_pytorch(**options)
    weights = tmp_path / "G_ema.pth"
    torch.save(reference.model.state_dict(), weights)
    bundle = load_biggan_pytorch(weights=str(weights), **options)
    assert torch.equal(bundle.model.shared.weight, reference.model.shared.weight), "weights loaded"
    adapted = ga.inject(bundle.model, kind="ssa", conditional=True)
    rows = ga.summary(adapted).rows
    assert [r.layer for r in rows] == ["ccbn"] * 4 + ["bn"] and sum(r.conditional for r in rows) == 4
    with torch.no_grad():
        assert adapted(*bundle.example_inputs()).shape == (2, 3, 16, 16)
    config = ga.TrainConfig(
        data=str(EMOJI),
        images=4,
        batch_size=4,
        steps=2,
        perceptual="none",
        model="ajbrock_loader:load_biggan_pytorch",
        model_options=options | {"weights": str(weights)},
        adapter=ga.AdapterConfig(kind="ssa"),
    )
    sys.path.insert(0, str(EXAMPLES / "biggan"))
    try:
        result = ga.train(config, tmp_path / "run")
    finally:
        sys.path.pop(0)
    with safe_open(str(result.paths.adapters), framework="pt") as handle:
        assert handle.get_tensor("extra/class_embedding").shape == (8,)


def test_every_shipped_recipe_loads_as_what_it_is():
    """A recipe with `[base]` is a sweep with cells to run; any other trains one run on a folder
    that ships (the demos run offline)."""
    import tomllib

    from gan_adapters.evaluation.grid import SweepConfig
    from gan_adapters.training.recipe import TrainConfig

    recipes = sorted((EXAMPLES.parent / "recipes").glob("*.toml"))
    assert len(recipes) >= 8
    for path in recipes:
        if "base" in tomllib.loads(path.read_text()):
            assert SweepConfig.from_toml(path).cells(), f"{path.name}: a sweep with no cell"
        else:
            config = TrainConfig.from_toml(path)
            assert Path(config.data).is_dir() and config.steps > 0, path.name
