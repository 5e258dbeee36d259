"""The adversarial recipe's loss at one step: the generator's hinge term against the critic, the
critic's hinge loss on DiffAugmented real and generated images, and, when blended, the supervised
terms. Both losses are computed on the state before the step's updates, so the divergence guard and
the checkpoint rule are the supervised recipe's: a checkpoint holds a state whose losses were finite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gan_adapters.training.augment import apply_augmentation, draw_augmentation
from gan_adapters.training.seeding import step_generator, to_device

if TYPE_CHECKING:
    from gan_adapters.training.session import Session


def adversarial_parts(session: Session, step: int) -> dict[str, torch.Tensor]:
    """This process's weighted loss terms at `step`: the generator's hinge term `g_adv`, the
    discriminator's `d_loss`, and the reconstruction terms times `recon_weight` when blended."""
    config, accelerator, bundle = session.config, session.accelerator, session.bundle
    gen = step_generator(config.seed, step)
    count, batch, device = session.count, session.batch, accelerator.device
    indices = torch.randperm(count, generator=gen)[:batch]
    z = torch.randn((batch, *bundle.latent_shape), generator=gen)
    jitter = torch.randn((batch, *bundle.latent_shape), generator=gen) * config.latent_jitter
    prior = torch.randn((10 * count, *bundle.latent_shape), generator=gen)
    draws = [draw_augmentation(config.augment, batch, gen) for _ in range(3)]  # fake for G, real, fake for D
    mine = slice(accelerator.process_index, None, accelerator.num_processes)
    local = to_device(indices[mine], device)
    reconstruct = dict(indices=local, jitter=to_device(jitter[mine], device), prior=to_device(prior, device))
    consistency = config.consistency_weight > 0
    inputs = reconstruct if config.reconstructs else {}
    out = session.model(z=to_device(z[mine], device), consistency=consistency, **inputs)
    fake = out["random"].float()

    def critic(images: torch.Tensor, draw: dict[str, torch.Tensor]) -> torch.Tensor:
        return session.critic.module(apply_augmentation(images, {k: v[mine] for k, v in draw.items()}))

    parts = {"g_adv": -critic(fake, draws[0]).mean()}
    d_real, d_fake = critic(session.targets[local], draws[1]), critic(fake.detach(), draws[2])
    parts["d_loss"] = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if consistency:
        parts["consistency"] = config.consistency_weight * out["consistency"]
    if config.reconstructs:
        recon = session.reconstruction_parts(out, local)
        parts |= {name: config.recon_weight * value for name, value in recon.items()}
    return parts
