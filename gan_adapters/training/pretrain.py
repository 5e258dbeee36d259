"""Pretrain one of the project's source architectures on a class-labelled image tensor (Noto emoji).

Hinge loss, a spectral-norm projection discriminator, an EMA of the generator, DiffAugment
(colour, translation, cutout: 3,600 images is small for a GAN), Adam; resumable bit-exactly
from an atomic checkpoint (every random draw comes from the step's own generator); stops at a
step count or a time budget. The EMA generator is what ships: fp16 safetensors with its
architecture, config and model card (`gan-adapters pretrain`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.errors import ConfigError, GeneratorError, TrainingDivergedError
from gan_adapters.files import (
    folder_lock,
    read_checkpoint,
    read_shards,
    removed_on_failure,
    write_checkpoint,
    write_shards,
)
from gan_adapters.generators.sources import load_generator_file, save_generator_file, source_architecture
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting
from gan_adapters.training.augment import check_policy, diff_augment
from gan_adapters.training.data import load_image_tensor
from gan_adapters.training.projected import ProjectedDiscriminator
from gan_adapters.training.seeding import step_generator, to_device


@dataclass
class PretrainConfig(Serialisable):
    """A pretraining run."""

    config_name = "pretraining config"

    architecture: str = "cdcgan"
    """A registered source architecture (`gan_adapters.generators.sources`): cdcgan or biggan."""
    model: Any = None
    """The architecture's config (a dict converts; None takes its defaults)."""
    batch_size: int = setting(64, minimum=1)
    """Images per step."""
    steps: int = setting(100_000, minimum=1)
    """Stop after this many steps."""
    minutes: float | None = setting(None, above=0)
    """Stop after this much training time (this call's)."""
    g_lr: float = setting(2e-4, above=0)
    """Generator learning rate (BigGAN's own: 1e-4)."""
    d_lr: float = setting(2e-4, above=0)
    """Discriminator learning rate (BigGAN's own: 4e-4)."""
    beta1: float = setting(0.5, minimum=0, maximum=0.999)
    """Adam's first beta for both networks (SNGAN's DCGAN setting; BigGAN's own is 0)."""
    ema_decay: float = setting(0.999, minimum=0, maximum=1)
    ema_start: int = setting(1000, minimum=0)
    augment: str = "color,translation,cutout"
    precision: str = setting("no", choices=("no", "bf16"))
    """no, or bf16 (autocast, on CUDA)."""
    seed: int = setting(0, minimum=0)
    checkpoint_every: int = setting(500, minimum=1)
    """Write the checkpoint and the portable weights every N steps."""
    discriminator: str = setting("own", choices=("own", "projected"))
    """own: the architecture's discriminator; projected: heads on frozen EfficientNet-Lite0
    features through fixed random projections (Projected GAN), with a class projection."""
    disc_width: int = setting(64, minimum=1)
    """Channels of the projected discriminator's mixing and heads."""
    balanced: bool = False
    """Draw classes uniformly, then an image of the class (rare classes seen as often as common)."""

    def validate(self) -> None:
        """The architecture exists and `model` is (or converts to) its config."""
        try:
            config_class = source_architecture(self.architecture).config
        except GeneratorError as exc:
            raise ConfigError(str(exc)) from exc
        if self.model is None:
            self.model = config_class()
        elif isinstance(self.model, dict):
            self.model = config_class.from_dict(self.model)
        elif not isinstance(self.model, config_class):
            raise ConfigError(f"a {self.architecture} source takes a {config_class.__name__}, "
                              f"got {type(self.model).__name__}")  # fmt: skip
        check_policy(self.augment)


@dataclass
class GANState:
    """Generator, discriminator, the EMA generator and both optimisers."""

    generator: nn.Module
    discriminator: nn.Module
    ema: nn.Module
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer

    def state_dicts(self) -> dict[str, dict]:
        """Every part's state, by name (the checkpoint's layout)."""
        return {name: getattr(self, name).state_dict() for name in ("generator", "discriminator", "ema", "g_opt", "d_opt")}  # fmt: skip

    def load(self, checkpoint: dict) -> None:
        """Restore every part from a checkpoint written from `state_dicts`."""
        for name in ("generator", "discriminator", "ema", "g_opt", "d_opt"):
            getattr(self, name).load_state_dict(checkpoint[name])


def _build(config: PretrainConfig, device: torch.device) -> GANState:
    architecture = source_architecture(config.architecture)
    generator = architecture.generator(config.model).to(device)
    if config.discriminator == "projected":
        model = config.model
        discriminator = ProjectedDiscriminator(
            model.resolution, config.disc_width, config.seed, model.num_classes
        )
    else:
        discriminator = architecture.discriminator(config.model)
    discriminator = discriminator.to(device)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (config.beta1, 0.999)
    g_opt = torch.optim.Adam(generator.parameters(), config.g_lr, betas=betas, eps=1e-6)
    trainable = [p for p in discriminator.parameters() if p.requires_grad]
    d_opt = torch.optim.Adam(trainable, config.d_lr, betas=betas, eps=1e-6)
    return GANState(generator, discriminator, ema, g_opt, d_opt)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model, parameters and buffers."""
    for target, source in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if target.is_floating_point():
            target.lerp_(source, 1 - decay)
        else:
            target.copy_(source)


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
    gan = _build(config, device)
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
    on_step: Callable[[int, int, dict[str, float], float], None] | None = None,
) -> dict:
    """Train G and D; write out/checkpoint.pt, out/generator-ema.safetensors and the portable
    weights (out/weights-*.safetensors, each under 15 MB) at every checkpoint; return the card.

    `resume` goes on from out/checkpoint.pt bit-exactly (the same steps an uninterrupted run
    takes). `init_from` is a folder of portable weights from an earlier run (another machine,
    another session): G, its EMA and D go on from their step; the optimisers' moments start afresh.
    Two processes never share `out`: the second is refused, naming the first."""
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
    card = {"architecture": config.architecture, "config": config.to_dict(), "data": name,
            "classes": classes, "images": len(images)}  # fmt: skip

    def save() -> None:
        seconds = time.monotonic() - began
        card.update(steps=done, train_seconds=round(earlier_seconds + seconds, 1), final=losses,
                    images_per_second=round((done - start) * config.batch_size / max(seconds, 1e-9), 1))  # fmt: skip
        write_checkpoint(checkpoint_path, {"step": done, "seconds": card["train_seconds"],
                                           "config": config.to_dict()} | gan.state_dicts())  # fmt: skip
        save_generator_file(standing_statistics(gan.ema), out / "generator-ema.safetensors", card)
        save_portable_weights(gan, out, done, card["train_seconds"])

    for step in range(start, config.steps):
        if config.minutes is not None and time.monotonic() - began > 60 * config.minutes:
            break
        gen = step_generator(config.seed, step)
        index = to_device(draw_indices(labels_cpu, config.batch_size, gen, config.balanced), device)
        z = to_device(torch.randn(config.batch_size, config.model.z_dim, generator=gen), device)
        pending = _gan_step(gan, config, images[index].float() / 127.5 - 1, labels[index], z, gen)
        update_ema(gan.ema, gan.generator, 0.0 if step < config.ema_start else config.ema_decay)
        done = step + 1
        due = done % config.checkpoint_every == 0
        if due or done % READ_EVERY == 0 or done == config.steps:  # always before a checkpoint
            losses = _read_losses(pending, step, checkpoint_path)
            if on_step is not None:
                on_step(done, config.steps, losses, time.monotonic() - began)
        if due:
            save()
    if done > start and done % READ_EVERY and done != config.steps:  # stopped by the time budget
        losses = _read_losses(pending, done - 1, checkpoint_path)
    save()
    return card


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


@torch.no_grad()
def standing_statistics(
    generator: nn.Module, batches: int = 32, batch_size: int = 64, seed: int = 0
) -> nn.Module:
    """A copy of `generator` whose BatchNorm running statistics are the average over its own
    samples (BigGAN's "standing statistics"): an EMA generator's weights never ran with the
    statistics it inherits from the trained one, and in eval mode it draws noise without this."""
    standing = copy.deepcopy(generator)
    norms = [m for m in standing.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    standing.train()
    gen = torch.Generator().manual_seed(seed)
    device = next(standing.parameters()).device
    config = standing.config
    for _ in range(batches):
        z = torch.randn(batch_size, config.z_dim, generator=gen).to(device)
        standing(z, torch.randint(config.num_classes, (batch_size,), generator=gen).to(device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return standing.eval()


PORTABLE_PARTS = ("generator", "discriminator")
SHARD_BYTES = 15 * 2**20


def save_portable_weights(gan: GANState, out: Path, step: int, seconds: float = 0.0) -> list[Path]:
    """G and D in fp16 as safetensors shards of at most 15 MB (what a GPU window can bring back;
    the EMA travels as generator-ema.safetensors)."""
    tensors = {
        f"{part}/{k}": v.half() if v.is_floating_point() else v
        for part in PORTABLE_PARTS
        for k, v in getattr(gan, part).state_dict().items()
    }
    return write_shards(tensors, out / "weights", SHARD_BYTES, {"step": str(step), "seconds": str(seconds)})


def load_portable_weights(gan: GANState, folder: Path) -> tuple[int, float]:
    """Load `save_portable_weights` files (and the EMA) into a freshly built GAN; returns their step
    and the training seconds behind them."""
    tensors, metadata = read_shards(folder / "weights")
    for part in PORTABLE_PARTS:
        module, prefix = getattr(gan, part), f"{part}/"
        own = module.state_dict()
        module.load_state_dict({k[len(prefix) :]: v.to(own[k[len(prefix) :]].dtype)
                                for k, v in tensors.items() if k.startswith(prefix)})  # fmt: skip
    ema, _ = load_generator_file(folder / "generator-ema.safetensors")
    gan.ema.load_state_dict(ema.state_dict())
    return int(metadata.get("step", "0")), float(metadata.get("seconds", "0"))
