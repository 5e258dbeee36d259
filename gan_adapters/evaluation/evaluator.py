"""Evaluate generated images against real ones: a folder, or a run that samples for itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_adapters.adapted.run import PRIORS, AdaptedRun, draw_latents, generate, load_run
from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.diversity import FeatureDistance, intra_cluster_diversity
from gan_adapters.evaluation.features import FeatureCache, FeatureFn, InceptionPool3, default_cache_folder
from gan_adapters.evaluation.metrics import Scores, require_two_a_side, score
from gan_adapters.images import OVERVIEWS
from gan_adapters.serial import Serialisable
from gan_adapters.settings import setting
from gan_adapters.training.data import load_image_folder
from gan_adapters.training.runs import RunPaths


@dataclass
class EvalConfig(Serialisable):
    """How a run is sampled and scored."""

    config_name = "eval config"

    samples: int = setting(100, minimum=2, flag=("--samples", "-n"))
    """Images to sample from a run (KID and FID need 2; precision and recall more than 5)."""
    prior: str = setting("auto", choices=PRIORS)
    """'auto': fitted for a supervised run, normal for an adversarial one; 'fitted': a Gaussian fitted
    to the run's learned latents; 'normal': N(0, sigma^2), the paper's protocol."""
    sigma: float | None = setting(None, above=0)
    """Normal prior: its std (the run's sample_sigma when not given); fitted prior: a factor on the fitted std."""
    truncation: float | None = setting(None, above=0)
    """Redraw latent entries beyond +-truncation (the truncation trick)."""
    seed: int = setting(0, minimum=0)
    """Random seed of the samples (same seed, same images)."""
    kid_subsets: int = setting(100, minimum=1)
    """KID: random subsets averaged over."""
    kid_subset_size: int = setting(1000, minimum=2)
    kmmd_bandwidth: float | None = setting(None, above=0)
    """KMMD Gaussian kernel bandwidth (the median pairwise distance when not given)."""


class Evaluator:
    """Scores image sets with one feature extractor and one feature cache."""

    def __init__(
        self,
        extractor: FeatureFn | None = None,
        name: str | None = None,
        cache: str | os.PathLike | None = "default",
    ) -> None:
        if extractor is None:
            extractor = InceptionPool3(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        self.extractor = extractor
        self.name = name or getattr(self.extractor, "name", type(self.extractor).__name__)
        folder = default_cache_folder() if cache == "default" else cache
        self.cache = FeatureCache(folder) if folder is not None else None
        self._distance: FeatureDistance | None = None

    @property
    def distance(self) -> FeatureDistance:
        """The feature distance of the intra-cluster diversity (built on first use)."""
        if self._distance is None:
            self._distance = FeatureDistance(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        return self._distance

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of images in [-1, 1], from the cache when these exact images were seen."""
        if self.cache is None:
            return self.extractor(images)
        return self.cache.features(images, self.extractor, self.name)

    def score_images(
        self,
        generated: torch.Tensor,
        real: torch.Tensor,
        config: EvalConfig,
        training: torch.Tensor | None = None,
    ) -> Scores:
        """KID, KMMD, FID, precision, recall, density and coverage of two image tensors, and the
        intra-cluster diversity of the generated images around `training` (the real images when
        not given: the clusters' centres)."""
        require_two_a_side(len(generated), len(real))  # before the features are computed
        scores = self._fidelity(generated, real, config)
        centres = real if training is None else training
        scores.intra_cluster_diversity = intra_cluster_diversity(
            self.distance.embed(generated), self.distance.embed(centres), self.distance.pairwise
        )
        return scores

    def _fidelity(self, generated: torch.Tensor, real: torch.Tensor, config: EvalConfig) -> Scores:
        return score(
            self.features(generated),
            self.features(real),
            kmmd_bandwidth=config.kmmd_bandwidth,
            kid_subsets=config.kid_subsets,
            kid_subset_size=config.kid_subset_size,
            seed=config.seed,
        )

    def score_run(
        self,
        run_folder: str | Path,
        real_folder: str | Path,
        config: EvalConfig,
        *,
        trust_code: bool = False,
        unseen: bool = False,
    ) -> Scores:
        """Sample `config.samples` images from a finished run and score them against a folder;
        `unseen`: only against the folder's images the run did not train on (see `trained_on`)."""
        run = load_run(run_folder, trust_code=trust_code)
        return self.score_adapted(run, real_folder, config, trained_on(run, real_folder) if unseen else 0)

    def score_adapted(
        self, run: AdaptedRun, real_folder: str | Path, config: EvalConfig, leave_out: int = 0
    ) -> Scores:
        """Score an already loaded run's samples against a folder (but its first `leave_out`
        images by name: those a run trained on, when the rest of its data is the scored set)."""
        images = generate(
            run, draw_latents(run, config.samples, config.prior, config.sigma, config.truncation, config.seed)
        )
        real = load_image_folder(real_folder, run.bundle.image_size).images[leave_out:]
        return self.score_images(images, real, config, training_images(run))

    def score_folders(
        self, generated_folder: str | Path, real_folder: str | Path, config: EvalConfig
    ) -> Scores:
        """Score a folder of generated images against a folder of real ones (same size)."""
        # A `sample` folder also holds its grid (and compare.png): pictures of samples, not samples.
        generated = load_image_folder(
            generated_folder, _first_image_size(generated_folder), ignore=OVERVIEWS
        ).images
        real = load_image_folder(real_folder, generated.shape[-1]).images
        return self.score_images(generated, real, config)


def training_images(run: AdaptedRun) -> torch.Tensor | None:
    """The images a run trained on (its recipe's folder and count), when its recipe is known and
    the folder is still there."""
    if run.config is None or not Path(run.config.data).is_dir():
        return None
    return load_image_folder(run.config.data, run.bundle.image_size, run.config.images).images


def trained_on(run: AdaptedRun, real_folder: str | Path) -> int:
    """How many of `real_folder`'s first images (by name) the run trained on, when the folder is
    the run's own data folder (training takes the first `images` by name): scoring the rest then
    measures what the run makes of images it never saw."""
    if run.config is None or not run.config.data:
        raise ConfigError(
            "the run has no recipe (config.toml) saying what it trained on: score a whole folder"
        )
    data = Path(run.config.data)
    if Path(real_folder).resolve() != data.resolve():
        raise ConfigError(
            f"the run trained on {data}, not on {real_folder}: leaving out what it saw needs its own data folder"
        )
    if run.config.images is None:
        raise ConfigError(f"the run trained on every image of {data}: none is left unseen to score against")
    return run.config.images


def is_run_folder(path: str | Path) -> bool:
    """Whether a path is a finished run folder (it holds adapters.safetensors)."""
    return Path(path).is_dir() and RunPaths(Path(path)).adapters.exists()


def _first_image_size(folder: str | Path) -> int:
    from PIL import Image

    for path in sorted(p for p in Path(folder).iterdir() if p.name not in OVERVIEWS):
        try:
            with Image.open(path) as image:
                return min(image.size)
        except OSError:
            continue
    return 64
