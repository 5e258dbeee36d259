"""The supervised recipe's loss at one step (Noguchi & Harada): each sampled training image is
reconstructed from its learned latent plus jitter; L1 + perceptual + the latent regulariser."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gan_adapters.training.seeding import step_generator, to_device

if TYPE_CHECKING:
    from gan_adapters.training.session import Session


def supervised_parts(session: Session, step: int) -> dict[str, torch.Tensor]:
    """This process's weighted loss terms at `step` (its rows of the step's seeded batch)."""
    config, accelerator, shape = session.config, session.accelerator, session.bundle.latent_shape
    gen = step_generator(config.seed, step)
    indices = torch.randperm(session.count, generator=gen)[: session.batch]
    jitter = torch.randn((session.batch, *shape), generator=gen) * config.latent_jitter
    prior = torch.randn((10 * session.count, *shape), generator=gen)
    mine = slice(accelerator.process_index, None, accelerator.num_processes)
    device = accelerator.device
    local = to_device(indices[mine], device)
    inputs = dict(indices=local, jitter=to_device(jitter[mine], device), prior=to_device(prior, device))
    if config.consistency_weight <= 0:
        return session.reconstruction_parts(session.model(**inputs), local)
    # Drawn after the batch's own draws, so a run without the term sees the same stream.
    z = torch.randn((session.batch, *shape), generator=gen) * config.sample_sigma
    out = session.model(z=to_device(z[mine], device), consistency=True, **inputs)
    parts = session.reconstruction_parts(out, local)
    return parts | {"consistency": config.consistency_weight * out["consistency"]}
