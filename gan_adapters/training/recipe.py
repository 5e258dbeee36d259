"""`TrainConfig`: one fine-tuning run (a recipe file is its TOML form).

Defaults follow Noguchi & Harada's official code: Adam at 5e-4 for the adapters and 0.05
for the per-image latents (zero at start), a learned class embedding at 1e-3 with an L2
penalty of 0.02, every learning rate x0.2 every 3,000 steps, 10,000 steps, batch 25,
latent jitter 0.01, latent regulariser 0.1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from gan_adapters.errors import ConfigError
from gan_adapters.serial import Serialisable
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.training.augment import check_policy

PRECISIONS = ("no", "bf16", "fp16")
RECIPES = ("supervised", "adversarial")
"""supervised: Noguchi & Harada (per-image latents, L1 + perceptual). adversarial: hinge loss
against a projected discriminator, z ~ N(0, I), optionally blended with the supervised terms."""


@dataclass
class TrainConfig(Serialisable):
    """Everything a fine-tuning run needs; `to_toml`/`from_toml` give its recipe file."""

    config_name = "recipe"

    recipe: str = "supervised"
    """'supervised' (Noguchi & Harada) or 'adversarial' (a projected discriminator; see recon_weight)."""
    data: str = ""
    """Folder of target images (a recipe's relative path is relative to the recipe)."""
    images: int | None = None
    """Use the first N images of the folder (sorted by name); all when None."""
    model: str = "dcgan-faces"
    model_options: dict[str, Any] = field(default_factory=dict)
    base_checkpoint: str | None = None
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    steps: int = 10_000
    batch_size: int = 25
    lr: float = 5e-4
    latent_lr: float = 0.05
    embedding_lr: float = 1e-3
    embedding_penalty: float = 0.02
    lr_decay_every: int = 3_000
    lr_decay: float = 0.2
    l1_weight: float = 1.0
    perceptual: str = "effnet-lite0"
    perceptual_weight: float | None = None
    """Per-layer weight; None takes the backbone's default."""
    perceptual_weights_path: str | None = None
    """VGG16 weights in torchvision format (the only backbone that does not install offline)."""
    latent_init: str = "zeros"
    """'zeros' (the official recipe) or 'prior': each latent starts as a draw from N(0, I)."""
    latent_reg_weight: float = 0.1
    latent_jitter: float = 0.01
    grad_accum: int = 1
    precision: str = "no"
    compile: bool = False
    channels_last: bool = True
    """Run the generator and the perceptual backbone in channels_last (25 % faster on the CPU);
    a generator that cannot (found by one probe step) falls back to contiguous with a warning."""
    tf32: bool = True
    """On CUDA, fp32 matmuls and convolutions in TF32 (set for the process when a run starts, as the
    benchmarks and the path table measure; recorded in run.json). No effect on the CPU."""
    class_label: int | None = None
    """Adapt (and sample) a class-conditional generator under this one class, as the research
    fine-tunes BigGAN from one class; None: the bundle's own default for labels=None."""
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    sample_sigma: float = 0.5
    strict_data: bool = False
    recon_weight: float = 0.0
    """Adversarial recipe: weight of the supervised recipe's terms (per-image latents, L1 +
    perceptual + latent regulariser); 0 trains adversarially alone."""
    d_lr: float = 2e-3
    """Adversarial recipe: learning rate of the discriminator's heads."""
    augment: str = "color,translation,cutout"
    """Adversarial recipe: DiffAugment policy applied to real and generated images."""
    disc_width: int = 64
    """Adversarial recipe: channels of the projected discriminator's mixing and heads."""
    log_with: list[str] = field(default_factory=list)
    """Accelerate trackers to log losses and sample grids to ('tensorboard', 'wandb', ...)."""

    def __post_init__(self) -> None:
        if isinstance(self.adapter, dict):
            self.adapter = AdapterConfig.from_dict(self.adapter)
        if self.latent_init not in ("zeros", "prior"):
            raise ConfigError(f"latent_init must be 'zeros' or 'prior', got {self.latent_init!r}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.recipe == "supervised" and self.recon_weight:
            raise ConfigError("recon_weight blends the supervised terms into the adversarial recipe; "
                              "the supervised recipe is all reconstruction")  # fmt: skip
        if self.recipe == "adversarial" and self.grad_accum != 1:
            raise ConfigError("the adversarial recipe updates D and G every step: grad_accum must be 1")
        if self.recon_weight < 0:
            raise ConfigError(f"recon_weight must be at least 0, got {self.recon_weight}")
        check_policy(self.augment)
        if "tensorboard" in self.log_with and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "--log-with tensorboard needs the tensorboard package, which is not installed: "
                "pip install 'gan-adapters[tracking]' (or pip install tensorboard)"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in (
            "steps",
            "batch_size",
            "grad_accum",
            "lr_decay_every",
            "sample_every",
            "checkpoint_every",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.images is not None and self.images < 1:
            raise ConfigError(f"images must be at least 1, got {self.images}")
        for name in ("lr", "latent_lr", "embedding_lr", "sample_sigma", "d_lr"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def reconstructs(self) -> bool:
        """Whether per-image latents and the reconstruction terms are trained."""
        return self.recipe == "supervised" or self.recon_weight > 0

    @classmethod
    def from_toml(cls, source: str | Path) -> Self:
        """Read a recipe (a Path to a file, or TOML text); a file's relative paths (data, model
        files, checkpoints, `model_options` that name files) are taken relative to the file."""
        config = super().from_toml(source)
        return config.with_paths_from(source.parent) if isinstance(source, Path) else config

    def with_paths_from(self, folder: Path) -> Self:
        """This recipe with every relative path in it made absolute from `folder`: the data, a
        `file.py:factory` model, the base and VGG checkpoints and `model_options` values that name
        an existing file or folder there. A run writes its config.toml so, and it works anywhere."""

        def absolute(value: str | None, must_exist: bool = False) -> str | None:
            if not value or Path(value).is_absolute():
                return value
            candidate = (folder / value).resolve()
            return str(candidate) if candidate.exists() or not must_exist else value

        model = self.model
        source, sep, factory = model.rpartition(":")
        if sep and source.endswith(".py"):
            model = f"{absolute(source)}:{factory}"
        options = {
            k: absolute(v, must_exist=True) if isinstance(v, str) else v
            for k, v in self.model_options.items()
        }
        return dataclasses.replace(
            self, data=absolute(self.data), model=model, model_options=options,
            base_checkpoint=absolute(self.base_checkpoint), perceptual_weights_path=absolute(self.perceptual_weights_path),
        )  # fmt: skip
