"""A finished run as a generator: reload it (folder or adapter file), draw latents, generate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_adapters.errors import AdapterFileError, GanAdaptersError, RunFolderError
from gan_adapters.generators.registry import GeneratorBundle, load_generator, refuse_untrusted_code
from gan_adapters.surgery import load_adapters, read_extras
from gan_adapters.training.embedding import replace_class_embedding
from gan_adapters.training.latents import sample_latents
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.trainables import is_full_weights, load_full_weights


@dataclass
class AdaptedRun:
    """A trained domain, ready to generate: the adapted bundle and its learned latents."""

    bundle: GeneratorBundle
    latents: torch.Tensor | None
    config: TrainConfig | None
    load_base: Callable[[], GeneratorBundle] | None = None
    """A fresh copy of the base generator as it was before adaptation (for before/after pictures)."""


def _checked_extras(extras: dict[str, torch.Tensor], bundle: GeneratorBundle, path: Path) -> None:
    latents = extras.get("latents")
    if latents is not None and (
        not latents.is_floating_point()
        or latents.dim() < 1
        or tuple(latents.shape[1:]) != bundle.latent_shape
    ):
        raise AdapterFileError(
            f"{path}: the learned latents have shape {tuple(latents.shape)} ({latents.dtype}); "
            f"{bundle.name} takes latents of shape (N, {', '.join(map(str, bundle.latent_shape))})"
        )


def run_files(source: Path, model: str | None, trust_code: bool) -> tuple[Path, TrainConfig | None]:
    """The adapter file of a run folder (and its recipe), or an adapter file given directly."""
    if source.is_dir():
        paths = RunPaths(source)
        if not paths.adapters.exists():
            raise RunFolderError(f"{source} has no adapters.safetensors: the run did not finish")
        config = TrainConfig.from_toml(paths.config)
        if model is None:
            refuse_untrusted_code(config.model, paths.config, trust_code)
        return paths.adapters, config
    if not source.exists():
        raise RunFolderError(f"no run folder or adapter file at {source}")
    if model is None:
        raise RunFolderError(f"{source} is an adapter file: also say which model it adapts (--model)")
    return source, None


def load_run(
    source: str | Path,
    model: str | None = None,
    *,
    trust_code: bool = False,
    adapter_name: str | None = None,
    **model_options,
) -> AdaptedRun:
    """A run folder, or an adapter file plus a model name, as an adapted generator (its adapter
    under `adapter_name`, or the name saved in the file).

    A run folder whose recipe names its generator as `package.module:factory` is refused
    unless `trust_code=True` (or `model` names the generator instead).
    """
    source = Path(source)
    adapter_file, config = run_files(source, model, trust_code)
    if config is not None:
        name, checkpoint, options = (
            model or config.model,
            config.base_checkpoint,
            config.model_options | model_options,
        )
    else:
        name, checkpoint, options = model, None, model_options

    def load_base() -> GeneratorBundle:
        return load_generator(name, checkpoint, **options)

    bundle = load_base()
    if is_full_weights(adapter_file):  # a fully fine-tuned generator (the baseline), not adapters
        extras = load_full_weights(bundle, adapter_file)
        _checked_extras(extras, bundle, adapter_file)
    else:
        extras = read_extras(adapter_file)
        _checked_extras(extras, bundle, adapter_file)
        bundle.model = load_adapters(
            bundle.model, adapter_file, adapter_name, example_inputs=bundle.example_inputs()
        )
        if "class_embedding" in extras and bundle.class_embedding:
            replace_class_embedding(bundle, extras["class_embedding"])
    bundle.model.to(best_device()).eval()  # beside the scoring network, not on the CPU while it runs on CUDA
    return AdaptedRun(bundle, extras.get("latents"), config, load_base)


PRIORS = ("auto", "fitted", "normal")
"""auto: 'fitted' for a run that learned per-image latents with the supervised recipe, else 'normal'."""


def resolve_prior(run: AdaptedRun, prior: str) -> str:
    """'auto' made concrete: 'fitted' for a supervised run with learned latents, else 'normal'."""
    if prior != "auto":
        return prior
    return (
        "fitted" if run.latents is not None and len(run.latents) > 1 and not _adversarial(run) else "normal"
    )


def _adversarial(run: AdaptedRun) -> bool:
    return run.config is not None and run.config.recipe == "adversarial"


def draw_latents(
    run: AdaptedRun,
    count: int,
    prior: str = "auto",
    sigma: float | None = None,
    truncation: float | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Latents for `count` images: from a Gaussian fitted to the run's learned latents
    ('fitted'; `sigma` scales its std, default 1) or from N(0, sigma^2) ('normal'; default
    sigma: 1 for the adversarial recipe, which trains on N(0, I), else the run's
    `sample_sigma`, 0.5 by default as in the official code). 'auto' picks as PRIORS says."""
    generator = torch.Generator().manual_seed(seed)
    shape = run.bundle.latent_shape
    prior = resolve_prior(run, prior)
    if prior == "fitted":
        if run.latents is None or len(run.latents) < 2:
            raise GanAdaptersError("this adapter file holds no learned latents to fit; use the normal prior")
        scale = 1.0 if sigma is None else sigma
        return sample_latents(
            count, shape, sigma=scale, truncation=truncation, generator=generator, fitted_to=run.latents
        )
    if prior != "normal":
        raise GanAdaptersError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    if sigma is None:
        sigma = 1.0 if _adversarial(run) else run.config.sample_sigma if run.config is not None else 0.5
    return sample_latents(count, shape, sigma=sigma, truncation=truncation, generator=generator)


@torch.no_grad()
def base_samples(run: AdaptedRun, count: int, seed: int = 0) -> torch.Tensor:
    """`count` images of the base generator as it was before adaptation, from N(0, I) and, for a
    class-conditional one, random classes of its own: what the adaptation started from."""
    base = run.load_base()
    gen = torch.Generator().manual_seed(seed)
    z = sample_latents(count, base.latent_shape, generator=gen)
    labels = torch.randint(base.num_classes, (count,), generator=gen) if base.num_classes else None
    return base.standardise(base.model.eval()(*base.forward_inputs(z, labels))).float()


@torch.no_grad()
def generate(run: AdaptedRun, latents: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Images in [-1, 1] for the given latents, in batches, on the CPU (made where the model is)."""
    bundle = run.bundle
    label = run.config.class_label if run.config is not None else None
    device = next(bundle.model.parameters()).device

    def images(chunk: torch.Tensor) -> torch.Tensor:
        chunk = chunk.to(device)
        labels = None if label is None else torch.full((chunk.shape[0],), label, device=device)
        return bundle.standardise(bundle.model(*bundle.forward_inputs(chunk, labels))).float().cpu()

    return torch.cat([images(chunk) for chunk in latents.split(batch_size)])


def best_device() -> torch.device:
    """CUDA where there is one (where the scoring network runs too), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
