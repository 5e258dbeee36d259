"""Randomness keyed by step: every draw of step s comes from a generator seeded by (seed, s).

A resumed run, or one split over several processes, so sees exactly the batches and noise of
an uninterrupted single-process run, and there is no RNG state to save. A generator that draws
from torch's global RNG in its own forward (StyleGAN's noise inputs) is keyed the same way:
each step reseeds the global RNG (CPU and every CUDA device) from (seed, step).
"""

from __future__ import annotations

import torch

INITIAL_LATENTS = -2
"""Pseudo-step of the draw that initialises per-image latents."""
PREVIEW_LATENTS = -1
"""Pseudo-step of the fixed draw behind every preview grid."""


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator for step `step` of a run seeded `seed`."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def seed_global_rng(seed: int, step: int) -> None:
    """Reseed torch's global RNG (CPU and CUDA) for step `step`, apart from `step_generator`'s draws."""
    torch.manual_seed((seed * 1_000_003 + step) ^ 0x5EED_5EED)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` (drawn on the CPU) on `device`. To a GPU it goes from pinned memory without blocking:
    a copy from pageable memory would first wait for every kernel already queued."""
    if device.type != "cuda" or tensor.is_cuda:
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
