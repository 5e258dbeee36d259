"""`PretrainConfig`: one pretraining run of a source architecture (`gan-adapters pretrain`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_adapters.errors import ConfigError, GeneratorError
from gan_adapters.generators.sources import source_architecture
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting
from gan_adapters.training.augment import check_policy


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
            raise ConfigError(
                f"a {self.architecture} source takes a {config_class.__name__}, "
                f"got {type(self.model).__name__}"
            )
        check_policy(self.augment)
