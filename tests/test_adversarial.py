"""The adversarial recipe: a projected discriminator whose feature network is frozen, only heads
and adapters training, resume bit-identical, two processes matching one, trackers that log."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from test_training import adapter_file_tensors, tiny_config
from test_training_cli import EMOJI, TINY, cli, env, two_process_finetune

import gan_adapters as ga
from gan_adapters.files import read_checkpoint
from gan_adapters.training.projected import ProjectedDiscriminator
from gan_adapters.training.runs import read_metrics
from gan_adapters.training.trainer import train


def adversarial(**overrides):
    return tiny_config(**(dict(recipe="adversarial", d_lr=2e-3, lr=5e-3, sample_every=100) | overrides))


def test_projected_discriminator_trains_only_its_heads_on_a_frozen_feature_network():
    torch.manual_seed(0)
    critic = ProjectedDiscriminator(16, width=16).train()
    assert not critic.features.training, "the feature network stays in eval mode"
    trainable = {name for name, p in critic.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("heads.") for name in trainable)
    images = torch.randn(3, 3, 16, 16, requires_grad=True)
    scores = critic(images)
    assert scores.shape == (3,)
    scores.sum().backward()
    assert images.grad.abs().sum() > 0, "the generator gets a gradient through the frozen features"
    assert all(p.grad is None for n, p in critic.named_parameters() if not n.startswith("heads."))
    mixing = [b.clone() for b in critic.projection.buffers()]
    assert ProjectedDiscriminator(16, width=16).projection.mix0.equal(mixing[0]), (
        "fixed random mixing, seeded"
    )


def test_adversarial_steps_train_adapters_and_heads_with_finite_losses(tmp_path):
    result = train(adversarial(steps=4), tmp_path / "run")
    rows = read_metrics(result.paths.metrics)
    assert len(rows) == 4 and all(r["d_loss"] >= 0 and r["g_adv"] != 0 for r in rows)
    assert any(r["d_loss"] > 0 for r in rows), "the hinge loss is not saturated from the start"
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rows)
    assert all(r["l1"] == 0 and r["latent_reg"] == 0 for r in rows), "no reconstruction terms"
    tensors = adapter_file_tensors(result.paths.adapters)
    assert max(v.abs().max() for k, v in tensors.items() if k.endswith("delta")) > 1e-3, "adapters moved"
    checkpoint = read_checkpoint(result.paths.checkpoint)
    assert checkpoint["critic"] and not any(k.startswith("features.") for k in checkpoint["critic"])
    initial = ProjectedDiscriminator(16, 64, seed=0).state_dict()
    moved = [
        k
        for k, v in checkpoint["critic"].items()
        if k.startswith("heads.") and not torch.equal(v, initial[k])
    ]
    assert moved, "the heads trained"
    assert torch.equal(checkpoint["latents"], torch.zeros_like(checkpoint["latents"])), (
        "latents unused, unchanged"
    )


def test_adversarial_resume_is_bit_identical(tmp_path):
    straight = train(adversarial(steps=6, checkpoint_every=3), tmp_path / "straight")
    train(adversarial(steps=3, checkpoint_every=3), tmp_path / "resumed")
    resumed = train(adversarial(steps=6, checkpoint_every=3), tmp_path / "resumed", resume=True)
    a, b = adapter_file_tensors(straight.paths.adapters), adapter_file_tensors(resumed.paths.adapters)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = read_checkpoint(straight.paths.checkpoint), read_checkpoint(resumed.paths.checkpoint)
    assert all(torch.equal(ca["critic"][k], cb["critic"][k]) for k in ca["critic"]), "the discriminator too"


def test_blended_recipe_trains_latents_and_a_users_own_discriminator(tmp_path):
    mine = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 4, 2, 1),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 1),
        torch.nn.Flatten(0),
    )
    before = [p.detach().clone() for p in mine.parameters()]
    result = train(adversarial(steps=3, recon_weight=1.0), tmp_path / "run", discriminator=mine)
    assert any(not torch.equal(p, q) for p, q in zip(mine.parameters(), before, strict=True))
    rows = read_metrics(result.paths.metrics)
    assert all(r["l1"] > 0 for r in rows), "the supervised terms are blended in"
    assert adapter_file_tensors(result.paths.adapters)["extra/latents"].abs().sum() > 0, "latents trained"


def test_two_processes_match_one_for_the_adversarial_recipe(tmp_path):
    args = [str(EMOJI), *TINY, "--recipe", "adversarial", "--steps", "4", "--checkpoint-every", "2"]
    one = cli("finetune", *args, "-o", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    command = two_process_finetune(*args, "-o", str(tmp_path / "two"))
    two = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env() | {"ACCELERATE_USE_CPU": "1"}
    )
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2
    a = adapter_file_tensors(tmp_path / "one" / "adapters.safetensors")
    b = adapter_file_tensors(tmp_path / "two" / "adapters.safetensors")
    for key in a:
        # Half a batch each, gradients averaged (DDP for G, by hand for D): the whole batch's
        # mean up to the order of float additions; four Adam steps keep that below 1e-4.
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_tensorboard_gets_losses_every_step_and_sample_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the test extras")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(adversarial(steps=4, sample_every=2, log_with=["tensorboard"]), tmp_path / "run")
    events = list((result.paths.root / "logs").rglob("events.out.tfevents.*"))
    assert events, "an event file"
    log = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert [e.step for e in log.Scalars("loss")] == [1, 2, 3, 4]
    assert {"d_loss", "g_adv", "lr"} <= set(log.Tags()["scalars"])
    assert [e.step for e in log.Images("samples")] == [2, 4]
    assert log.Scalars("d_loss")[0].value == pytest.approx(
        read_metrics(result.paths.metrics)[0]["d_loss"], rel=1e-4
    )


def test_recipe_options_are_validated():
    with pytest.raises(ga.ConfigError, match="recipe must be one of"):
        tiny_config(recipe="diffusion")
    with pytest.raises(ga.ConfigError, match="recon_weight blends"):
        tiny_config(recon_weight=1.0)
    with pytest.raises(ga.ConfigError, match="grad_accum must be 1"):
        adversarial(grad_accum=2)
    with pytest.raises(ga.ConfigError, match="unknown DiffAugment op 'rotate'"):
        adversarial(augment="color,rotate")
