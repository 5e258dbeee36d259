"""The adversarial recipe's other side: a discriminator (the projected one, or the user's own),
its optimiser, its update, and what of it goes into a checkpoint.

The discriminator is not wrapped in DDP; its gradients are averaged over processes by hand,
which with per-image scores (no batch norm) equals the whole batch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from gan_adapters.training.projected import ProjectedDiscriminator
from gan_adapters.training.recipe import TrainConfig


@dataclass
class Critic:
    """The discriminator, its optimiser, and the state-dict prefixes that never train."""

    module: nn.Module
    optimizer: Any
    frozen_prefixes: tuple[str, ...] = ()

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: trainable weights and buffers (not the frozen feature network)."""
        weights = {
            k: v.detach().cpu().clone()
            for k, v in self.module.state_dict().items()
            if not k.startswith(self.frozen_prefixes)
        }
        return {"critic": weights, "critic_optimizer": self.optimizer.state_dict()}

    def load(self, checkpoint: dict[str, Any], d_lr: float) -> None:
        """Restore from `state()`'s entries, with the configured learning rate."""
        missing, unexpected = self.module.load_state_dict(checkpoint["critic"], strict=False)
        if unexpected or any(not k.startswith(self.frozen_prefixes) for k in missing):
            raise KeyError(
                f"the checkpoint's discriminator does not fit: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
        self.optimizer.load_state_dict(checkpoint["critic_optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = d_lr

    def update(self, accelerator: Accelerator, d_loss: torch.Tensor) -> None:
        """One step on the hinge loss (its gradients from the generator's loss are discarded)."""
        self.optimizer.zero_grad(set_to_none=True)
        accelerator.backward(d_loss)
        if accelerator.num_processes > 1:
            for param in self.module.parameters():
                if param.grad is not None:
                    param.grad = accelerator.reduce(param.grad, reduction="mean")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def build_critic(
    config: TrainConfig, resolution: int, accelerator: Accelerator, discriminator: nn.Module | None = None
) -> Critic:
    """The projected discriminator (or `discriminator`, all of whose parameters train) on the device."""
    if discriminator is None:
        module, frozen = ProjectedDiscriminator(resolution, config.disc_width, config.seed), ("features.",)
    else:
        module, frozen = discriminator.requires_grad_(True), ()
    module = module.to(accelerator.device).train()
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = accelerator.prepare_optimizer(torch.optim.Adam(trainable, config.d_lr, betas=(0.0, 0.99)))
    return Critic(module, optimizer, frozen)
