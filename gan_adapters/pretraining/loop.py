"""Pretrain one of the project's source architectures on a class-labelled image tensor (Noto emoji).

Hinge loss, a spectral-norm projection discriminator (or a projected one on frozen features), an
EMA of the generator, DiffAugment (colour, translation, cutout: 3,600 images is small for a GAN),
Adam; resumable bit-exactly from an atomic checkpoint (every random draw comes from the step's own
generator); stops at a step count or a time budget. The EMA generator is what ships: fp16
safetensors with its architecture, config and model card (`gan-adapters pretrain`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_adapters.errors import RunInterruptedError, TrainingDivergedError
from gan_adapters.files import folder_lock, read_checkpoint, removed_on_failure, write_checkpoint
from gan_adapters.generators.sources import save_generator_file
from gan_adapters.pretraining.config import PretrainConfig
from gan_adapters.pretraining.state import (
    GANState,
    build_gan,
    load_portable_weights,
    save_portable_weights,
    standing_statistics,
    update_ema,
)
from gan_adapters.training.augment import diff_augment
from gan_adapters.training.data import load_image_tensor
from gan_adapters.training.interrupt import stop_between_steps
from gan_adapters.training.seeding import step_generator, to_device


def _gan_step(gan: GANState, config: PretrainConfig, real, y, z, gen) -> dict[str, float]:
    """One hinge-loss update of D, then of G, on augmented real and fake images."""
    autocast = dict(device_type=real.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    with torch.autocast(**autocast):
        fake = gan.generator(z, y)
        d_real = gan.discriminator(diff_augment(real, config.augment, gen), y)
        d_fake = gan.discriminator(diff_augment(fake.detach(), config.augment, gen), y)
        d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    gan.d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    gan.d_opt.step()
    with torch.autocast(**autocast):
        g_loss = -gan.discriminator(diff_augment(fake, config.augment, gen), y).mean()
    gan.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    gan.g_opt.step()
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


READ_EVERY = 10
"""Steps between reads of the losses: each read waits for the GPU, so not every step."""


def _read_losses(losses: dict, step: int, checkpoint: Path) -> dict[str, float]:
    """The losses as floats (one wait for the device), refused when not finite."""
    values = dict(zip(losses, torch.stack(list(losses.values())).tolist(), strict=True))
    if not all(math.isfinite(v) for v in values.values()):
        raise TrainingDivergedError(
            f"losses became {values} by step {step}; {checkpoint} holds the last good state"
        )
    return values


def _start(config: PretrainConfig, out: Path, resume: bool, init_from: str | Path | None) -> tuple:
    """(the GAN, its step, the training seconds behind it): fresh, resumed or from portable weights."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    gan = build_gan(config, device)
    if resume:
        checkpoint = read_checkpoint(out / "checkpoint.pt")
        gan.load(checkpoint)
        return gan, int(checkpoint["step"]), float(checkpoint.get("seconds", 0.0))
    if init_from is not None:
        return gan, *load_portable_weights(gan, Path(init_from))
    return gan, 0, 0.0


def pretrain(
    config: PretrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    resume: bool = False,
    init_from: str | Path | None = None,
    on_step: Callable[[int, int, dict[str, float], float, float], None] | None = None,
) -> dict:
    """Train G and D; write out/checkpoint.pt, out/generator-ema.safetensors and the portable
    weights (out/weights-*.safetensors, each under 15 MB) at every checkpoint; return the card.

    `resume` goes on from out/checkpoint.pt bit-exactly (the same steps an uninterrupted run
    takes). `init_from` is a folder of portable weights from an earlier run (another machine,
    another session): G, its EMA and D go on from their step; the optimisers' moments start afresh.
    Two processes never share `out`: the second is refused, naming the first. `on_step(step, steps,
    losses, seconds, images_per_second)` hears every tenth step (seconds and images/s of this call)."""
    out = Path(out)
    images, labels, classes = load_image_tensor(data)  # refused before the folder is made
    with removed_on_failure(out, (out / "checkpoint.pt").exists), folder_lock(out, "the pretraining folder"):
        return _pretrain(config, (images, labels, classes), Path(data).name, out, resume, init_from, on_step)


def _pretrain(
    config: PretrainConfig, data: tuple, name: str, out: Path, resume: bool, init_from, on_step
) -> dict:
    images, labels, classes = data
    labels_cpu = labels
    config.model.num_classes = len(classes) or int(labels.max()) + 1
    gan, start, earlier_seconds = _start(config, out, resume, init_from)
    device = next(gan.generator.parameters()).device
    images, labels = images.to(device), labels.to(device)
    checkpoint_path = out / "checkpoint.pt"
    began, losses, done = time.monotonic(), {}, start
    card = {"architecture": config.architecture, "config": config.to_dict(), "data": name}
    card |= {"classes": classes, "images": len(images)}

    def save() -> None:
        seconds = time.monotonic() - began
        card.update(
            steps=done,
            train_seconds=round(earlier_seconds + seconds, 1),
            final=losses,
            images_per_second=round((done - start) * config.batch_size / max(seconds, 1e-9), 1),
        )
        write_checkpoint(
            checkpoint_path,
            {"step": done, "seconds": card["train_seconds"], "config": config.to_dict()} | gan.state_dicts(),
        )
        save_generator_file(standing_statistics(gan.ema), out / "generator-ema.safetensors", card)
        save_portable_weights(gan, out, done, card["train_seconds"])

    with stop_between_steps() as stop:
        for step in range(start, config.steps):
            if stop.requested or (
                config.minutes is not None and time.monotonic() - began > 60 * config.minutes
            ):
                break
            pending = _seeded_step(gan, config, (images, labels, labels_cpu), step)
            done = step + 1
            due = done % config.checkpoint_every == 0
            if due or done % READ_EVERY == 0 or done == config.steps:  # always before a checkpoint
                losses = _read_losses(pending, step, checkpoint_path)
                if on_step is not None:
                    seconds = time.monotonic() - began
                    on_step(done, config.steps, losses, seconds, (done - start) * config.batch_size / seconds)
            if due:
                save()
    if done > start and done % READ_EVERY and done != config.steps:  # stopped early
        losses = _read_losses(pending, done - 1, checkpoint_path)
    save()
    if stop.requested:
        raise RunInterruptedError(
            f"stopped by Ctrl-C; {checkpoint_path} holds step {done}: `resume` goes on", done
        )
    return card


def _seeded_step(gan: GANState, config: PretrainConfig, data: tuple, step: int) -> dict[str, torch.Tensor]:
    """Step `step` on its own seeded draws (batch, latents, augmentation), then the EMA; the losses
    come back unread (reading waits for the device)."""
    images, labels, labels_cpu = data
    device, gen = images.device, step_generator(config.seed, step)
    index = to_device(draw_indices(labels_cpu, config.batch_size, gen, config.balanced), device)
    z = to_device(torch.randn(config.batch_size, config.model.z_dim, generator=gen), device)
    pending = _gan_step(gan, config, images[index].float() / 127.5 - 1, labels[index], z, gen)
    update_ema(gan.ema, gan.generator, 0.0 if step < config.ema_start else config.ema_decay)
    return pending


def draw_indices(labels: torch.Tensor, count: int, gen: torch.Generator, balanced: bool) -> torch.Tensor:
    """`count` image indices: uniform over images, or (balanced) a uniform class, then a uniform
    image of that class."""
    if not balanced:
        return torch.randint(len(labels), (count,), generator=gen)
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels)
    present = counts.nonzero().squeeze(1)
    starts = torch.cumsum(counts, 0) - counts
    picked = present[torch.randint(len(present), (count,), generator=gen)]
    offsets = (torch.rand(count, generator=gen) * counts[picked]).long()
    return order[starts[picked] + offsets]
