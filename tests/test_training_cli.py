"""finetune, sample and interpolate as a user runs them; two processes; kill -9; torch.compile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_training import EMOJI, adapter_file_tensors, tiny_config

from gan_adapters.faults import KILL_VARIABLE
from gan_adapters.files import read_checkpoint
from gan_adapters.training.runs import read_metrics
from gan_adapters.training.trainer import train

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TINY = [
    "--model",
    "tiny_models:tiny_dcgan",
    "--images",
    "8",
    "--batch-size",
    "8",
    "--perceptual",
    "none",
    "-k",
    "apgc",
    "--group-size",
    "4",
    "--lr",
    "5e-3",
]


def env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(TESTS), "COLUMNS": "160", "OMP_NUM_THREADS": "1"}


def two_process_finetune(*args: str) -> list[str]:
    """`gan-adapters finetune ARGS` as two processes under torchrun (the CPU backend)."""
    return [str(BIN / "torchrun"), "--nproc_per_node", "2", "-m", "gan_adapters", "finetune", *args]


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

    refused = cli("sample", str(run), "-n", "5")
    assert refused.returncode == 2 and "--trust-code" in refused.stderr, (
        "the run names code: not without consent"
    )
    assert not (run / "samples-fitted-seed0").exists()
    sampled = cli(
        "sample", str(run), "-n", "5", "--prior", "normal", "--sigma", "0.7", "--seed", "3", "--trust-code"
    )
    assert sampled.returncode == 0, sampled.stderr
    folder = run / "samples-normal-seed3"
    assert len(list(folder.glob("sample-*.png"))) == 5
    with Image.open(folder / "sample-0000.png") as image:
        assert image.size == (16, 16)
    assert (folder / "grid.png").exists()

    for between in ("random", "training"):
        walked = cli("interpolate", str(run), "--frames", "6", "--between", between, "--trust-code")
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
    refused = cli("finetune", str(recipe), "--steps", "3", "-o", str(tmp_path / "run"))
    assert refused.returncode == 2 and "names its generator as code" in refused.stderr
    result = cli(
        "finetune",
        str(recipe),
        "--steps",
        "3",
        "--ratio",
        "1",
        "--fold",
        "always",
        "--pointwise-impl",
        "bmm",
        "-o",
        str(tmp_path / "run"),
        "--trust-code",
    )
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "steps = 3" in config and "ratio = 1.0" in config and "group_size" not in config
    assert 'fold = "always"' in config and 'pointwise_impl = "bmm"' in config


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
    assert missing.returncode == 2 and "no run folder or adapter file at" in missing.stderr


def test_two_processes_match_one(tmp_path):
    args = [str(EMOJI), *TINY, "--steps", "6", "--checkpoint-every", "3"]
    one = cli("finetune", *args, "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    command = two_process_finetune(*args, "-o", str(tmp_path / "two"))
    two = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env() | {"ACCELERATE_USE_CPU": "1"}
    )  # stays on the CPUs on a GPU machine too
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


def _metrics_without_time(run: Path) -> list[dict[str, str]]:
    rows = (run / "metrics.csv").read_text().splitlines()
    return [",".join(row.split(",")[:-1]) for row in rows]  # "seconds" is the last column


def test_kill_minus_nine_at_every_dangerous_point_then_resume_is_bit_exact(tmp_path):
    args = ["finetune", str(EMOJI), *TINY, "--steps", "12", "--checkpoint-every", "4", "--sample-every", "12"]
    reference = cli(*args, "-o", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr

    run = tmp_path / "killed"
    kills = [
        ("step:6", []),  # mid-step: after backward, before the update
        ("rename:checkpoint.pt", ["--resume"]),  # the step-8 checkpoint written, not yet renamed
        ("rename:adapters.safetensors", ["--resume"]),  # the result written, not yet renamed
    ]
    for point, extra in kills:
        command = [sys.executable, "-m", "gan_adapters", *args, "-o", str(run), *extra]
        killed = subprocess.run(
            command, capture_output=True, text=True, timeout=300, env=env() | {KILL_VARIABLE: point}
        )
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    assert not (run / "adapters.safetensors").exists() and list(run.glob(".adapters.safetensors.*"))
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 12, (
        "the last checkpoint was renamed before the kill"
    )
    finished = cli(*args, "-o", str(run), "--resume")
    assert finished.returncode == 0, finished.stderr
    assert not list(run.glob(".*")), "temporary files of killed writes are cleared on resume"

    ours, theirs = (
        adapter_file_tensors(run / "adapters.safetensors"),
        adapter_file_tensors(tmp_path / "reference" / "adapters.safetensors"),
    )
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), f"{key} differs from the uninterrupted run"
    assert _metrics_without_time(run) == _metrics_without_time(tmp_path / "reference")


def test_compiled_generator_trains_like_the_eager_one(tmp_path):
    eager = train(tiny_config(steps=3), tmp_path / "eager")
    compiled = train(tiny_config(steps=3, compile=True), tmp_path / "compiled")
    a, b = adapter_file_tensors(eager.paths.adapters), adapter_file_tensors(compiled.paths.adapters)
    for key in a:
        # Inductor fuses and reorders float operations; three steps stay within 1e-4.
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)


def test_several_domains_sample_as_rows_blend_and_morph(tmp_path):
    """Two runs on one base: a grid row per domain, a blend, a morph whose ends are the domains."""
    animals = TESTS.parent / "examples" / "data" / "emoji-animals"
    for name, data in (("faces", EMOJI), ("animals", animals)):
        done = cli("finetune", str(data), *TINY, "--steps", "6", "-o", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    faces, animals_run = str(tmp_path / "faces"), str(tmp_path / "animals")
    rows = cli("sample", faces, animals_run, "-n", "3", "--columns", "3", "--prior", "normal", "--trust-code")
    assert rows.returncode == 0, rows.stderr
    folder = tmp_path / "faces" / "samples-domains-seed0"
    with Image.open(folder / "grid.png") as grid:
        assert grid.size == (3 * 18 + 2, 2 * 18 + 2), "one row of 3 per domain"
    one = cli("sample", animals_run, "-n", "3", "--prior", "normal", "--trust-code")
    assert one.returncode == 0, one.stderr
    with (
        Image.open(folder / "animals" / "sample-0000.png") as row,
        Image.open(tmp_path / "animals" / "samples-normal-seed0" / "sample-0000.png") as alone,
    ):
        assert np.array_equal(np.asarray(row), np.asarray(alone)), (
            "a domain's row is what its run alone draws"
        )

    blended = cli("sample", faces, animals_run, "--blend", "faces:0.5,animals:0.5", "-n", "2", "--trust-code")
    assert blended.returncode == 0, blended.stderr
    assert len(list((tmp_path / "faces" / "samples-blend-seed0").glob("sample-*.png"))) == 2
    bad = cli("sample", faces, animals_run, "--blend", "cats:1", "--trust-code")
    assert bad.returncode == 2 and "not one of the domains given: faces, animals" in bad.stderr

    morph = cli(
        "interpolate",
        "--between-domains",
        faces,
        animals_run,
        "--frames",
        "5",
        "--rows",
        "2",
        "--prior",
        "normal",
        "--trust-code",
    )
    assert morph.returncode == 0, morph.stderr
    out = tmp_path / "faces" / "morph-animals-seed0"
    with Image.open(out / "strip.png") as strip:
        assert strip.size == (5 * 18 + 2, 2 * 18 + 2)
        first_row_start = strip.crop((2, 2, 18, 18))
        first_row_end = strip.crop((2 + 4 * 18, 2, 18 + 4 * 18, 18))
    with (
        Image.open(folder / "faces" / "sample-0000.png") as face,
        Image.open(folder / "animals" / "sample-0000.png") as animal,
    ):
        assert np.array_equal(np.asarray(first_row_start), np.asarray(face)), "t = 0 is domain A"
        assert np.array_equal(np.asarray(first_row_end), np.asarray(animal)), "t = 1 is domain B"
    with Image.open(out / "morph.gif") as gif:
        assert gif.n_frames == 8 and gif.size == (2 * 16, 16)
    nope = cli("sample", str(tmp_path / "nope"))
    assert nope.returncode == 2 and "no run folder or adapter file at" in nope.stderr


def test_two_processes_on_one_run_folder_cannot_both_write_it(tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "gan_adapters",
        "finetune",
        str(EMOJI),
        *TINY,
        "--steps",
        "100000",
        "-o",
        str(run),
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    try:
        for _ in range(1200):
            if (run / "metrics.csv").exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        second = cli("finetune", str(EMOJI), *TINY, "--steps", "8", "-o", str(run), "--overwrite")
        assert second.returncode == 2 and f"is in use by process {first.pid}" in second.stderr, second.stderr
        assert first.poll() is None, "the first run goes on"
    finally:
        first.kill()
        first.wait()
    steps = [int(r["step"]) for r in read_metrics(run / "metrics.csv")]
    assert steps == list(range(1, len(steps) + 1)), "one writer: no step twice, none missing"
    third = cli("finetune", str(EMOJI), *TINY, "--steps", "4", "-o", str(run), "--overwrite")
    assert third.returncode == 0, "a killed holder's lock is taken over"
    assert not (run / ".lock").exists(), "released at the end"


def test_a_pretraining_folder_held_by_a_live_process_is_refused_and_a_dead_ones_taken_over(tmp_path):
    import socket

    from test_zoo import tiny_tensor

    from gan_adapters.errors import RunFolderError
    from gan_adapters.generators.cdcgan import CDCGANConfig
    from gan_adapters.pretraining.config import PretrainConfig
    from gan_adapters.pretraining.loop import pretrain

    out, data = tmp_path / "source", tiny_tensor(tmp_path / "tiny.safetensors")
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{socket.gethostname()} {sleeper.pid}")
        config = PretrainConfig(model=CDCGANConfig(ch=4, z_dim=16), batch_size=4, steps=2)
        with pytest.raises(RunFolderError, match=f"pretraining folder .* is in use by process {sleeper.pid}"):
            pretrain(config, data, out)
        assert not (out / "checkpoint.pt").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert pretrain(config, data, out)["steps"] == 2, "the dead process's lock is taken over"
    assert not (out / ".lock").exists()


CORPUS = {
    # case: the adapter options its widths need (all else is the default: apgc, effnet-lite0, channels_last)
    "plain_biggan": {"group_size": 4},
    "sngan": {},
    "sagan": {},
    "gigagan": {"targets": ["AdaptiveKernelConv"]},
    "mlp_mnist": {},
    "fastgan": {},
    "keyword_conditioned": {},
    "dict_input": {},
    "zipped_blocks": {},
    # nn.GLU states no width: measured on the bundle's example inputs, again when the run is loaded
    "fastgan:glu": {"targets": [r"up\.4"], "kind": "ssa"},
}
ANNOUNCED = {
    "sagan": "does not run in channels_last (RuntimeError: view size",
    "gigagan": "does not run in channels_last (RuntimeError: required rank 4",
    "mlp_mnist": "converted to greyscale",
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_corpus_generator_finetunes_with_defaults_and_samples_from_another_folder(
    case, tmp_path, caplog
):
    """Trained in this process (the trainer is the CLI's), sampled by the CLI from another folder."""
    from gan_adapters import AdapterConfig, TrainConfig
    from gan_adapters.training.trainer import train

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = TrainConfig(
        data=str(EMOJI),
        model=f"corpus:{case.split(':')[0]}",
        images=8,
        batch_size=4,
        steps=3,
        adapter=AdapterConfig(**CORPUS[case]),
    )
    train(config, run)
    if case in ANNOUNCED:
        assert ANNOUNCED[case] in " ".join(caplog.text.split())
    sampled = subprocess.run(
        [sys.executable, "-m", "gan_adapters", "sample", "../run", "-n", "3", "--trust-code"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
        cwd=elsewhere,
    )
    assert sampled.returncode == 0, sampled.stderr
    assert len(list(run.glob("samples-*/sample-*.png"))) == 3


def test_a_generator_whose_images_do_not_fit_the_data_is_refused_before_the_first_step(tmp_path):
    wrong = tmp_path / "wrong_size.py"
    wrong.write_text(
        "import dataclasses, corpus\n"
        "def make():\n"
        "    return dataclasses.replace(corpus.fastgan(), image_size=32)\n"
    )
    done = cli(
        "finetune",
        str(EMOJI),
        "--model",
        f"{wrong}:make",
        "--steps",
        "3",
        "--perceptual",
        "none",
        "-o",
        str(tmp_path / "run"),
    )
    assert done.returncode == 2, done.stderr
    assert "fastgan makes 16x16 images but the training images were resized to 32x32" in " ".join(
        done.stderr.split()
    )
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_runs_config_is_a_recipe_that_works_from_anywhere_with_paths_relative_to_it(tmp_path):
    """Relative paths in a recipe (data, a model file, model_options files) are relative to the
    recipe; the run's config.toml stores them absolute, so it is itself a recipe usable anywhere."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "mine.py").write_text(
        "import tiny_models\n"
        "def make(scale='x'):\n"
        "    from pathlib import Path\n"
        "    assert Path(scale).is_file(), scale\n"
        "    return tiny_models.tiny_dcgan()\n"
    )
    (project / "models" / "scale.txt").write_text("1")
    shutil.copytree(EMOJI, project / "images")
    recipe = project / "recipe.toml"
    recipe.write_text(
        'model = "models/mine.py:make"\nmodel_options = { scale = "models/scale.txt" }\ndata = "images"\n'
        'images = 6\nsteps = 2\nbatch_size = 6\nperceptual = "none"\n[adapter]\nkind = "ssa"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = subprocess.run(
        [sys.executable, "-m", "gan_adapters", "finetune", str(recipe), "-o", "run", "--trust-code"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
        cwd=elsewhere,
    )
    assert first.returncode == 0, first.stderr
    stored = tomllib.loads((elsewhere / "run" / "config.toml").read_text())
    assert (
        stored["data"] == str(project / "images")
        and stored["model"] == f"{project / 'models' / 'mine.py'}:make"
    )
    assert stored["model_options"]["scale"] == str(project / "models" / "scale.txt")
    again = cli(
        "finetune", str(elsewhere / "run" / "config.toml"), "-o", str(tmp_path / "again"), "--trust-code"
    )
    assert again.returncode == 0, again.stderr


def test_sample_folders_never_mix_two_calls_and_eval_skips_their_grids(tmp_path):
    run = tmp_path / "run"
    assert cli("finetune", str(EMOJI), *TINY, "--steps", "2", "-o", str(run)).returncode == 0
    for count in ("6", "3"):
        done = cli("sample", str(run), "-n", count, "--prior", "normal", "--trust-code", "--compare")
        assert done.returncode == 0, done.stderr
    folder = run / "samples-normal-seed0"
    assert sorted(p.name for p in folder.glob("sample-*.png")) == [f"sample-{i:04d}.png" for i in range(3)]
    real = tmp_path / "real"
    real.mkdir()
    for path in sorted(EMOJI.glob("*.png"))[:4]:
        shutil.copy(path, real / path.name)
    scored = cli("eval", str(folder), str(real), "--json", str(tmp_path / "scores.json"))
    assert scored.returncode == 0, scored.stderr
    assert json.loads((tmp_path / "scores.json").read_text())["generated"] == 3, (
        "grid.png and compare.png are not samples"
    )
