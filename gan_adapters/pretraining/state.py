"""What a pretraining run holds (G, D, the EMA of G, both optimisers), and how it travels: the EMA's
standing BN statistics, and G and D as portable fp16 shards another machine goes on from."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gan_adapters.files import read_shards, write_shards
from gan_adapters.generators.sources import load_generator_file, source_architecture
from gan_adapters.pretraining.config import PretrainConfig
from gan_adapters.training.projected import ProjectedDiscriminator


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
        return {
            name: getattr(self, name).state_dict()
            for name in ("generator", "discriminator", "ema", "g_opt", "d_opt")
        }

    def load(self, checkpoint: dict) -> None:
        """Restore every part from a checkpoint written from `state_dicts`."""
        for name in ("generator", "discriminator", "ema", "g_opt", "d_opt"):
            getattr(self, name).load_state_dict(checkpoint[name])


def build_gan(config: PretrainConfig, device: torch.device) -> GANState:
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
        module.load_state_dict(
            {
                k[len(prefix) :]: v.to(own[k[len(prefix) :]].dtype)
                for k, v in tensors.items()
                if k.startswith(prefix)
            }
        )
    ema, _ = load_generator_file(folder / "generator-ema.safetensors")
    gan.ema.load_state_dict(ema.state_dict())
    return int(metadata.get("step", "0")), float(metadata.get("seconds", "0"))
