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

from gan_adapters.errors import ConfigError, SettingError
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting
from gan_adapters.surgery import AdapterConfig
from gan_adapters.training.augment import check_policy
from gan_adapters.training.perceptual import BACKBONES

PRECISIONS = ("no", "bf16", "fp16")
RECIPES = ("supervised", "adversarial")
SELECTION_MEASURES = ("kid", "precision", "recall", "coverage", "intra_cluster_diversity")
"""What `select_by` may rank checkpoints by: KID (lower is better) or a fidelity/diversity measure."""
"""supervised: Noguchi & Harada (per-image latents, L1 + perceptual). adversarial: hinge loss
against a projected discriminator, z ~ N(0, I), optionally blended with the supervised terms."""

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "comet_ml": "comet-ml"}
"""pip's name for a tracker's package where it is not the tracker's own name."""


def tracker_problem(name: str) -> str:
    """Why `--log-with name` cannot work here ('' when it can): unknown, or not installed."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    if name not in LOGGER_TYPE_TO_CLASS:
        return f"names an unknown tracker {name!r}; known: {', '.join(LOGGER_TYPE_TO_CLASS)}"
    if importlib.util.find_spec(name) is None:
        package = TRACKER_PACKAGES.get(name, name)
        extra = " (or pip install 'gan-adapters[tracking]')" if name == "tensorboard" else ""
        return f"names {name}, which is not installed: pip install {package}{extra}"
    return ""


@dataclass
class TrainConfig(Serialisable):
    """Everything a fine-tuning run needs; `to_toml`/`from_toml` give its recipe file."""

    config_name = "recipe"

    recipe: str = setting("supervised", choices=RECIPES)
    """supervised (Noguchi & Harada: per-image latents, L1 + perceptual) or adversarial (hinge loss
    against a projected discriminator, z ~ N(0, I))."""
    data: str = ""
    """Folder of target images (a recipe's relative path is relative to the recipe)."""
    images: int | None = setting(None, minimum=1)
    """Use the first N images of the folder (sorted by name); all when not given."""
    model: str = "dcgan-faces"
    model_options: dict[str, Any] = field(default_factory=dict)
    base_checkpoint: str | None = None
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    method: str = setting("adapters", choices=("adapters", "full"))
    """adapters: only the adapters train (and latents, class embedding); full: every parameter of the
    generator trains, no adapters (full fine-tuning, the field's baseline; `adapter` is ignored)."""
    steps: int = setting(10_000, minimum=1)
    """Training steps."""
    batch_size: int = setting(25, minimum=1)
    """Images per step (all processes together)."""
    lr: float = setting(5e-4, above=0)
    """Adapter learning rate."""
    latent_lr: float = setting(0.05, above=0)
    """Per-image latent learning rate."""
    embedding_lr: float = setting(1e-3, above=0)
    """Learning rate of a class-conditional generator's learned class embedding."""
    embedding_penalty: float = setting(0.02, minimum=0)
    lr_decay_every: int = setting(3_000, minimum=1)
    lr_decay: float = setting(0.2, above=0, maximum=1)
    l1_weight: float = setting(1.0, minimum=0)
    perceptual: str = setting("effnet-lite0", choices=(*BACKBONES, "none"))
    """Perceptual backbone (vgg16 needs weights: --vgg-weights)."""
    perceptual_weight: float | None = setting(None, minimum=0)
    """Per-layer weight; None takes the backbone's default."""
    perceptual_weights_path: str | None = setting(None, flag="--vgg-weights")
    """VGG16 weights in torchvision format (the only backbone that does not install offline)."""
    latent_init: str = setting("zeros", choices=("zeros", "prior"))
    """'zeros' (the official recipe) or 'prior': each latent starts as a draw from N(0, I)."""
    latent_reg_weight: float = setting(0.1, minimum=0)
    latent_jitter: float = setting(0.01, minimum=0)
    grad_accum: int = setting(1, minimum=1)
    """Accumulate gradients over K steps per optimizer update."""
    precision: str = setting("no", choices=PRECISIONS)
    """Mixed precision on CUDA: no, bf16 or fp16."""
    compile: bool = setting(False, flag="--compile/--eager")
    """torch.compile the generator."""
    channels_last: bool = True
    """Run the generator and the perceptual backbone in channels_last (25 % faster on the CPU);
    a generator that cannot (found by one probe step) falls back to contiguous with a warning."""
    tf32: bool = True
    """On CUDA, fp32 matmuls and convolutions in TF32 (set for the process when a run starts, as the
    benchmarks and the path table measure; recorded in run.json). No effect on the CPU."""
    class_label: int | None = setting(None, minimum=0, flag="--class")
    """Class-conditional generators: adapt (and later sample) under this one class, as the research
    fine-tunes BigGAN from one class; a learned class embedding starts from that class's entry."""
    seed: int = setting(0, minimum=0)
    """Random seed (same seed, same run)."""
    sample_every: int = setting(500, minimum=1)
    """Write a sample grid every K steps."""
    checkpoint_every: int = setting(500, minimum=1)
    """Checkpoint every K steps."""
    sample_sigma: float = setting(0.5, above=0)
    strict_data: bool = setting(False, flag="--strict")
    """Refuse unreadable files in the image folder instead of skipping them."""
    recon_weight: float = setting(0.0, minimum=0)
    """Adversarial recipe: weight of the supervised recipe's terms (per-image latents, L1 +
    perceptual + latent regulariser); 0 trains adversarially alone."""
    d_lr: float = setting(2e-3, above=0)
    """Adversarial recipe: learning rate of the discriminator's heads."""
    augment: str = "color,translation,cutout"
    """Adversarial recipe: DiffAugment policy applied to real and generated images."""
    disc_width: int = setting(64, minimum=1)
    """Adversarial recipe: channels of the projected discriminator's mixing and heads."""
    consistency_weight: float = setting(0.0, minimum=0)
    """Weight of the cross-domain distance consistency (CDC, Ojha et al. 2021): the adapted generator
    keeps the source's pairwise similarities between samples (the source: the same model with its
    adapters disabled; under full fine-tuning a frozen copy), against collapse. Costs one more
    forward a step (supervised: two)."""
    select_by: str | None = setting(None, choices=SELECTION_MEASURES)
    """Keep the best checkpoint as well as the last: every checkpoint's adapters are scored on the
    `validation` images by this measure (kid: lowest; the others: highest) and the best is copied
    to adapters-best.safetensors (said in run.json)."""
    validation: str | None = None
    """With `select_by`: a folder of held-out images of the target, never scored for a table."""
    log_with: list[str] = field(default_factory=list)
    """Log losses and sample grids to Accelerate trackers (tensorboard, wandb, ...); files go to OUT/logs."""

    def validate(self) -> None:
        """Rules between fields, and names that must exist (trackers, augmentations)."""
        if self.recipe == "supervised" and self.recon_weight:
            raise SettingError(
                "recon_weight",
                "blends the supervised terms into the adversarial recipe; "
                "the supervised recipe is all reconstruction",
            )
        if self.consistency_weight and self.batch_size < 3:
            raise SettingError(
                "consistency_weight", "compares each sample with the others: needs batch_size >= 3"
            )
        if self.select_by and not self.validation:
            raise SettingError("select_by", "scores checkpoints on held-out images: give `validation` too")
        if self.recipe == "adversarial" and self.grad_accum != 1:
            raise SettingError(
                "grad_accum", "must be 1 in the adversarial recipe (it updates D and G every step)"
            )
        try:
            check_policy(self.augment)
        except ConfigError as exc:
            raise SettingError("augment", f"names {exc}") from exc
        for name in self.log_with:
            if problem := tracker_problem(name):
                raise SettingError("log_with", problem)

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
            self,
            data=absolute(self.data),
            validation=absolute(self.validation),
            model=model,
            model_options=options,
            base_checkpoint=absolute(self.base_checkpoint),
            perceptual_weights_path=absolute(self.perceptual_weights_path),
        )
