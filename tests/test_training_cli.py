"""finetune, sample and interpolate as a user runs them; two processes; kill -9; torch.compile."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from test_training import EMOJI, adapter_file_tensors, tiny_config

from gan_adapters.runs import read_checkpoint
from gan_adapters.trainer import train

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TINY = ["--model", "tiny_models:tiny_dcgan", "--images", "8", "--batch-size", "8", "--perceptual", "none",
        "-k", "apgc", "--group-size", "4", "--lr", "5e-3"]  # fmt: skip


def env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(TESTS), "COLUMNS": "160", "OMP_NUM_THREADS": "1"}


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gan_adapters", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env())


def test_finetune_sample_interpolate_end_to_end(tmp_path):
    run = tmp_path / "run"
    result = cli("finetune", str(EMOJI), *TINY, "--steps", "8", "--sample-every", "4", "-o", str(run))
    assert result.returncode == 0, result.stderr
    assert "run finished: 8 steps" in result.stdout and "adapters.safetensors" in result.stdout
    for name in ("config.toml", "metrics.csv", "checkpoint.pt", "adapters.safetensors", "run.json"):
        assert (run / name).exists(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000004.png", "step-000008.png"]
    assert json.loads((run / "run.json").read_text())["steps"] == 8

    sampled = cli("sample", str(run), "-n", "5", "--prior", "normal", "--sigma", "0.7", "--seed", "3")
    assert sampled.returncode == 0, sampled.stderr
    folder = run / "samples-normal-seed3"
    assert len(list(folder.glob("sample-*.png"))) == 5
    with Image.open(folder / "sample-0000.png") as image:
        assert image.size == (16, 16)
    assert (folder / "grid.png").exists()

    for between in ("random", "training"):
        walked = cli("interpolate", str(run), "--frames", "6", "--between", between)
        assert walked.returncode == 0, walked.stderr
        out = run / f"interpolation-{between}-seed0"
        with Image.open(out / "strip.png") as strip:
            assert strip.size == (6 * 18 + 2, 18 + 2)
        with Image.open(out / "interpolation.gif") as gif:
            assert gif.n_frames == 10, "6 frames forth and 4 back"

    again = cli("finetune", str(EMOJI), *TINY, "--steps", "8", "-o", str(run))
    assert again.returncode == 2 and "already holds a run" in again.stderr and "Traceback" not in again.stderr


def test_recipe_file_with_command_line_overrides(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tiny_config(steps=50, data=str(EMOJI)).to_toml())
    result = cli("finetune", str(recipe), "--steps", "3", "--ratio", "1", "-o", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "steps = 3" in config and "ratio = 1.0" in config and "group_size" not in config


def test_bad_inputs_give_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("finetune", str(empty), *TINY, "-o", str(tmp_path / "run"))
    assert (
        result.returncode == 2
        and "no readable images in" in result.stderr
        and "Traceback" not in result.stderr
    )
    few = cli("finetune", str(EMOJI), *TINY[:2], "--images", "500", "-o", str(tmp_path / "run2"))
    assert few.returncode == 2 and "fewer than the 500 asked for" in few.stderr
    missing = cli("sample", str(tmp_path / "nothing-here.safetensors"), "--model", "dcgan-faces")
    assert missing.returncode == 2 and "no adapter file at" in missing.stderr


def test_two_processes_match_one(tmp_path):
    args = [str(EMOJI), *TINY, "--steps", "6", "--checkpoint-every", "3"]
    one = cli("finetune", *args, "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    command = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "-m",
        "gan_adapters",
        "finetune",
        *args,
        "-o",
        str(tmp_path / "two"),
    ]
    two = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env())
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    a = adapter_file_tensors(tmp_path / "one" / "adapters.safetensors")
    b = adapter_file_tensors(tmp_path / "two" / "adapters.safetensors")
    assert a.keys() == b.keys()
    moved = max(a[k].abs().max().item() for k in a if k.endswith("delta"))
    assert moved > 1e-3, "the adapters trained"
    for key in a:
        # Each process takes half of every batch; DDP averages the halves' gradients, which is
        # the full batch's mean up to the order of float additions (about 1e-7 relative), and
        # six Adam steps keep that far below 1e-4.
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_kill_minus_nine_never_leaves_a_broken_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [
        "finetune",
        str(EMOJI),
        *TINY,
        "--steps",
        "400",
        "--checkpoint-every",
        "1",
        "--sample-every",
        "400",
    ]
    steps_seen = []
    rng = random.Random(0)
    for attempt in range(3):
        command = [sys.executable, "-m", "gan_adapters", *args, "-o", str(run)] + (
            ["--resume"] if attempt else []
        )
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        deadline = time.monotonic() + 120
        start_step = steps_seen[-1] if steps_seen else 0
        while time.monotonic() < deadline:
            if (run / "checkpoint.pt").exists() and read_checkpoint(run / "checkpoint.pt")[
                "step"
            ] > start_step + 2:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.2))
        process.send_signal(signal.SIGKILL)
        process.wait()
        steps_seen.append(read_checkpoint(run / "checkpoint.pt")["step"])  # readable after every kill
    assert steps_seen == sorted(steps_seen) and steps_seen[0] > 0
    finished = cli("finetune", *args[1:], "-o", str(run), "--resume")
    assert finished.returncode == 0, finished.stderr
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 400
    assert not list(run.glob(".*")), "temporary files of killed writes are cleared on resume"


def test_compiled_generator_trains_like_the_eager_one(tmp_path):
    eager = train(tiny_config(steps=3), tmp_path / "eager")
    compiled = train(tiny_config(steps=3, compile=True), tmp_path / "compiled")
    a, b = adapter_file_tensors(eager.paths.adapters), adapter_file_tensors(compiled.paths.adapters)
    for key in a:
        # Inductor fuses and reorders float operations; three steps stay within 1e-4.
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
