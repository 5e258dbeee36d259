"""Fine-tuning: the loss falls, resume reproduces, bad input is refused, work is never lost."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import gan_adapters as ga
from gan_adapters.adapted.run import load_run
from gan_adapters.errors import DataError, RunFolderError, TrainingDivergedError
from gan_adapters.files import read_checkpoint
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.training.data import load_image_folder
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import read_metrics
from gan_adapters.training.trainer import train

EMOJI = Path(__file__).resolve().parents[1] / "examples" / "data" / "emoji-faces"


def tiny_config(**overrides) -> TrainConfig:
    base = dict(
        data=str(EMOJI),
        images=6,
        model="tiny_models:tiny_dcgan",
        adapter=AdapterConfig(kind="apgc", group_size=4),
        steps=12,
        batch_size=6,
        lr=5e-3,
        perceptual="none",
        sample_every=6,
        checkpoint_every=6,
    )
    return TrainConfig(**(base | overrides))


def adapter_file_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118


def test_pretrained_dcgan_loss_falls_on_emoji_with_the_effnet_perceptual_loss(tmp_path):
    config = TrainConfig(
        data=str(EMOJI), images=8, batch_size=8, steps=16, lr=3e-3, sample_every=8, checkpoint_every=8
    )
    result = train(config, tmp_path / "run")
    rows = read_metrics(result.paths.metrics)
    assert [int(r["step"]) for r in rows] == list(range(1, 17))
    first, last = rows[0], rows[-1]
    assert last["l1"] < 0.8 * first["l1"], (first, last)
    assert last["perceptual"] < first["perceptual"]
    assert (result.paths.samples / "step-000008.png").exists() and (
        result.paths.samples / "step-000016.png"
    ).exists()
    with Image.open(result.paths.samples / "step-000016.png") as grid:
        assert grid.size == (8 * 66 + 2, 3 * 66 + 2), "rows: targets, reconstructions, random samples"
    tensors = adapter_file_tensors(result.paths.adapters)
    assert tensors["extra/latents"].shape == (8, 100, 1, 1)
    assert TrainConfig.from_toml(result.paths.config) == config


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    whole = train(tiny_config(), tmp_path / "whole")
    train(tiny_config(steps=6), tmp_path / "split")
    resumed = train(tiny_config(), tmp_path / "split", resume=True)
    assert read_checkpoint(resumed.paths.checkpoint)["step"] == 12
    a, b = adapter_file_tensors(whole.paths.adapters), adapter_file_tensors(resumed.paths.adapters)
    assert a.keys() == b.keys()
    for key in a:
        # Same ops on the same data in the same order: on one CPU process the two runs agree
        # to the last bit; the tolerance only forgives a different thread split of a reduction.
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert [int(r["step"]) for r in read_metrics(resumed.paths.metrics)] == list(range(1, 13))
    first = read_checkpoint(tmp_path / "split" / "checkpoint-previous.pt")["seconds"]
    seconds = [float(r["seconds"]) for r in read_metrics(resumed.paths.metrics)]
    assert seconds == sorted(seconds) and seconds[6] > first, "the clock goes on from the first segment"
    assert (
        resumed.seconds > first
        and json.loads(resumed.paths.summary.read_text())["seconds"] == resumed.seconds
    )


def test_resume_is_bit_exact_for_a_generator_with_global_noise_and_state_outside_buffers(tmp_path):
    """Its forward draws noise from the global RNG and updates a plain-attribute u vector: both
    are keyed or checkpointed, so a run split at step 6 equals an uninterrupted one exactly."""
    config = dict(model="tiny_models:noisy_spectral_dcgan", adapter=AdapterConfig(kind="ssa"))
    whole = train(tiny_config(**config), tmp_path / "whole")
    train(tiny_config(steps=6, **config), tmp_path / "split")
    torch.manual_seed(99)  # whatever the caller did to the global RNG in between
    resumed = train(tiny_config(**config), tmp_path / "split", resume=True)
    a, b = adapter_file_tensors(whole.paths.adapters), adapter_file_tensors(resumed.paths.adapters)
    assert all(torch.equal(a[key], b[key]) for key in a)
    final = read_checkpoint(resumed.paths.checkpoint)["base_state"]
    assert torch.equal(final["1:u"], read_checkpoint(whole.paths.checkpoint)["base_state"]["1:u"])


def test_a_chosen_class_is_what_training_and_sampling_ask_the_generator_for(tmp_path):
    """SNGAN-style per-layer class tables read the labels: with class_label=2 every call gets 2."""
    import tiny_models

    tiny_models.LABELS_SEEN.clear()
    config = tiny_config(
        model="tiny_models:recording_sngan",
        adapter=AdapterConfig(kind="ssa"),
        steps=2,
        images=4,
        batch_size=4,
        class_label=2,
    )
    result = train(config, tmp_path / "run")
    discovery, *training = tiny_models.LABELS_SEEN
    assert discovery == [0, 0], "inject reads the sites on the bundle's example inputs"
    assert training and all(seen == [2] * len(seen) for seen in training)
    tiny_models.LABELS_SEEN.clear()
    run = load_run(result.paths.root, trust_code=True)
    ga.generate(run, ga.draw_latents(run, 3))
    assert tiny_models.LABELS_SEEN[-1] == [2, 2, 2], "sampling uses the run's class"


def test_class_conditional_generator_learns_one_class_embedding(tmp_path):
    config = tiny_config(model="tiny_models:tiny_biggan_deep", adapter=AdapterConfig(kind="ssa"), steps=6)
    result = train(config, tmp_path / "run")
    tensors = adapter_file_tensors(result.paths.adapters)
    run = load_run(result.paths.root, trust_code=True)
    pretrained_mean = run.bundle.model.embeddings.embedding  # restored from the file
    assert torch.equal(pretrained_mean.detach(), tensors["extra/class_embedding"])
    from tiny_models import tiny_biggan_deep

    fresh_mean = tiny_biggan_deep().model.embeddings.weight.mean(1)
    assert not torch.allclose(tensors["extra/class_embedding"], fresh_mean), "the embedding trained"
    assert len(ga.summary(run.bundle.model).rows) == 21

    # Shared in fp16 (as GPU windows bring cells back): it loads into the model's own dtypes.
    with safe_open(str(result.paths.adapters), "pt") as handle:
        metadata = handle.metadata()
    save_file({k: v.half() for k, v in tensors.items()}, str(result.paths.adapters), metadata=metadata)
    halved = load_run(result.paths.root, trust_code=True)
    assert halved.bundle.model.embeddings.embedding.dtype == torch.float32 == halved.latents.dtype
    assert torch.equal(
        halved.bundle.model.embeddings.embedding.detach(), tensors["extra/class_embedding"].half().float()
    )


def test_existing_run_folder_is_not_overwritten_without_asking(tmp_path):
    train(tiny_config(steps=2), tmp_path / "run")
    with pytest.raises(
        RunFolderError, match="already holds a run; pass --resume to continue it or --overwrite"
    ):
        train(tiny_config(steps=2), tmp_path / "run")
    first = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    train(tiny_config(steps=3, seed=1), tmp_path / "run", overwrite=True)
    replaced = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert replaced["step"] == 3 and replaced["config"]["seed"] == 1 and first["config"]["seed"] == 0
    assert [int(r["step"]) for r in read_metrics(tmp_path / "run" / "metrics.csv")] == [1, 2, 3]
    with pytest.raises(RunFolderError, match="nothing to resume"):
        train(tiny_config(steps=2), tmp_path / "empty", resume=True)
    with pytest.raises(RunFolderError, match="these differ: `seed` \\(was 1, now 2\\)"):
        train(tiny_config(steps=4, seed=2), tmp_path / "run", resume=True)


def test_divergence_keeps_the_last_good_state_and_a_lower_lr_resumes_from_it(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(steps=4, checkpoint_every=2), run)
    with pytest.raises(TrainingDivergedError, match="holds step 4, the last state whose loss was finite"):
        train(tiny_config(steps=40, checkpoint_every=2, lr=1e30, latent_lr=1e30), run, resume=True)
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    assert checkpoint["step"] == 4, "no checkpoint of a state whose loss was not finite"
    assert all(torch.isfinite(t).all() for t in checkpoint["adapters"].values())
    assert torch.isfinite(checkpoint["latents"]).all() and checkpoint["latents"].abs().max() < 100

    finished = train(tiny_config(steps=10, checkpoint_every=2, lr=1e-3), run, resume=True)
    assert all(math.isfinite(v) for v in finished.final.values())
    summary = json.loads((run / "run.json").read_text())
    assert summary["resumed_from"] == 4 and summary["resume_changes"]["lr"] == [tiny_config().lr, 1e-3]
    assert summary["resume_changes"]["steps"] == [4, 10], "compared with the good checkpoint's run"


def test_resume_refuses_unsafe_changes_and_past_the_end(tmp_path):
    run = tmp_path / "run"
    train(tiny_config(steps=4, checkpoint_every=2), run)
    with pytest.raises(RunFolderError, match="these differ: `batch_size` \\(was 6, now 2\\)"):
        train(tiny_config(steps=8, batch_size=2), run, resume=True)
    with pytest.raises(RunFolderError, match="already reached step 4; ask for more `steps`"):
        train(tiny_config(steps=4), run, resume=True)
    with pytest.raises(ga.ConfigError, match="pick one"):
        train(tiny_config(steps=8), run, resume=True, overwrite=True)


def test_a_damaged_checkpoint_is_detected_and_the_run_resumes_bit_exactly_from_the_one_before(
    tmp_path, caplog
):
    reference = train(tiny_config(steps=12, checkpoint_every=4), tmp_path / "reference")
    for damage in ("truncate", "flip"):
        run = tmp_path / damage
        train(tiny_config(steps=8, checkpoint_every=4), run)
        data = (run / "checkpoint.pt").read_bytes()
        if damage == "truncate":
            (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
        else:
            middle = len(data) // 2
            (run / "checkpoint.pt").write_bytes(
                data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            )
        resumed = train(tiny_config(steps=12, checkpoint_every=4), run, resume=True)
        assert json.loads((run / "run.json").read_text())["resumed_from"] == 4, "from checkpoint-previous.pt"
        assert "resuming from checkpoint-previous.pt" in caplog.text
        ours, theirs = (
            adapter_file_tensors(resumed.paths.adapters),
            adapter_file_tensors(reference.paths.adapters),
        )
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), damage


def test_resume_refuses_a_data_folder_whose_images_changed(tmp_path):
    train(tiny_config(steps=4, checkpoint_every=2), tmp_path / "run")
    other = tmp_path / "other"
    other.mkdir()
    for path in sorted(EMOJI.iterdir())[6:12]:
        shutil.copy(path, other / path.name)
    with pytest.raises(RunFolderError, match="are not the ones the run .* started with"):
        train(tiny_config(steps=8, data=str(other)), tmp_path / "run", resume=True)
    moved = tmp_path / "moved"
    shutil.copytree(EMOJI, moved)
    finished = train(tiny_config(steps=6, data=str(moved)), tmp_path / "run", resume=True)
    assert finished.steps == 6, "the same images in another folder resume fine"


def _image_folder(tmp_path: Path, count: int, extra: dict[str, bytes] | None = None) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(EMOJI.iterdir())[:count]:
        shutil.copy(path, folder / path.name)
    for name, content in (extra or {}).items():
        (folder / name).write_bytes(content)
    return folder


def test_image_folder_errors_and_skips(tmp_path, caplog):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no readable images in .*empty \(looked at 0 files"):
        load_image_folder(tmp_path / "empty", 16)
    folder = _image_folder(tmp_path, 4, {"notes.txt": b"hello", "broken.png": b"\x89PNG not really"})
    with pytest.raises(DataError, match="has 4 readable images, fewer than the 5 asked for"):
        load_image_folder(folder, 16, max_images=5)
    loaded = load_image_folder(folder, 16)
    assert loaded.images.shape == (4, 3, 16, 16) and loaded.images.min() >= -1 and loaded.images.max() <= 1
    assert sorted(p.name for p in loaded.skipped) == ["broken.png", "notes.txt"]
    assert "skipped 2 files" in caplog.text and "broken.png" in caplog.text
    with pytest.raises(DataError, match="2 files in .* are not readable images: broken.png, notes.txt"):
        load_image_folder(folder, 16, strict=True)


def test_rgba_and_grey_images_become_rgb_on_white(tmp_path):
    folder = tmp_path / "modes"
    folder.mkdir()
    Image.new("RGBA", (40, 20), (0, 0, 0, 0)).save(folder / "a.png")
    Image.new("L", (20, 40), 0).save(folder / "b.jpg")
    images = load_image_folder(folder, 8).images
    assert torch.allclose(images[0], torch.ones_like(images[0])), "transparent becomes white"
    assert torch.allclose(images[1], -torch.ones_like(images[1])), "black stays black, in 3 channels"


def test_recipe_round_trips_and_refuses_unknown_keys(tmp_path):
    config = tiny_config(model_options={"nz": 8}, perceptual_weight=0.5)
    path = tmp_path / "recipe.toml"
    path.write_text(config.to_toml())
    assert TrainConfig.from_toml(path) == config
    path.write_text('data = "imgs"\nsteps = 5\nwarmup = 3\n')
    with pytest.raises(ga.ConfigError, match="unknown recipe keys: warmup"):
        TrainConfig.from_toml(path)
    path.write_text('data = "imgs"\nsteps = 5\n')
    assert TrainConfig.from_toml(path).data == str((tmp_path / "imgs").resolve()), "relative to the recipe"
    with pytest.raises(ga.ConfigError, match="precision must be one of"):
        TrainConfig(precision="fp8")


def conv_dtypes(run):
    """run()'s result, and the dtypes the generator's transposed convs produced while training."""
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, a, out: (
            seen.append(out.dtype)
            if isinstance(m, torch.nn.ConvTranspose2d) and torch.is_grad_enabled()
            else None
        )
    )
    try:
        return run(), set(seen)
    finally:
        hook.remove()


def test_bf16_autocast_and_gradient_accumulation_run_on_the_cpu(tmp_path):
    config = tiny_config(steps=4, precision="bf16", grad_accum=2, checkpoint_every=4)
    result, dtypes = conv_dtypes(lambda: train(config, tmp_path / "run"))
    assert dtypes == {torch.bfloat16}, "autocast ran the generator's convs in bf16"
    rows = read_metrics(result.paths.metrics)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    checkpoint = read_checkpoint(result.paths.checkpoint)
    assert checkpoint["scheduler"]["last_epoch"] == 2, "4 steps, one optimizer update per 2"
    assert checkpoint["optimizer"]["state"], "Adam stepped"


def test_a_batch_that_does_not_split_over_the_processes_is_rounded_down_with_a_notice(caplog):
    from gan_adapters.training.trainer import batch_per_step

    assert batch_per_step(25, 100, 1) == 25 and batch_per_step(25, 6, 2) == 6
    assert batch_per_step(25, 100, 2) == 24 and "does not split over 2 processes: 24 per step" in caplog.text
    with pytest.raises(
        ga.ConfigError, match="a batch of 1 images .* cannot give each of 2 processes an image"
    ):
        batch_per_step(25, 1, 2)


def test_a_loss_found_not_finite_at_a_checkpoint_step_is_never_checkpointed(tmp_path):
    """With a checkpoint due every step, the first non-finite loss falls on a checkpoint step: the
    guard must run before the write, or the checkpoint would hold the diverged state."""
    run = tmp_path / "run"
    train(tiny_config(steps=2, checkpoint_every=1), run)
    with pytest.raises(TrainingDivergedError):
        train(tiny_config(steps=40, checkpoint_every=1, lr=1e30, latent_lr=1e30), run, resume=True)
    checkpoint = read_checkpoint(run / "checkpoint.pt")
    assert all(torch.isfinite(t).all() and t.abs().max() < 1e6 for t in checkpoint["adapters"].values())
    metrics = read_metrics(run / "metrics.csv")
    # Row k of metrics.csv is the loss of the state after k - 1 updates: the last row measured the
    # last state whose loss was finite, which is what the checkpoint must hold.
    assert checkpoint["step"] == len(metrics) - 1 == 2


def test_tf32_is_set_for_the_run_and_recorded(tmp_path):
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        for tf32 in (False, True):
            result = train(tiny_config(steps=1, tf32=tf32), tmp_path / f"run-{tf32}")
            assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32
            assert json.loads(result.paths.summary.read_text())["tf32"] is tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
