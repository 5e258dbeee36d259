"""What a fine-tuning run holds while it trains, and the files it writes along the way."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from PIL import Image
from torch import nn

from gan_adapters.errors import SettingError
from gan_adapters.generators.registry import GeneratorBundle, load_generator
from gan_adapters.images import make_grid, save_png
from gan_adapters.training.consistency import frozen_source, with_consistency
from gan_adapters.training.critic import Critic
from gan_adapters.training.data import ImageSet
from gan_adapters.training.embedding import LearnedEmbedding, replace_class_embedding
from gan_adapters.training.latents import chamfer_to_prior, sample_latents
from gan_adapters.training.perceptual import PerceptualLoss, build_perceptual
from gan_adapters.training.probe import fit_targets, probe_layout
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.seeding import PREVIEW_LATENTS, step_generator
from gan_adapters.training.trainables import prepare_trainables, save_result, trained_parameters


def cpu_only_launch() -> bool:
    """Whether this is a multi-process launch that must run on CPUs: torchrun without GPUs, or
    with ACCELERATE_USE_CPU set. Accelerate runs it as MULTI_CPU only when told so."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    forced = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return forced or not torch.cuda.is_available()


class TrainState(nn.Module):
    """Everything that trains, in one module so Accelerate/DDP sees one set of gradients."""

    def __init__(
        self,
        bundle: GeneratorBundle,
        latents: torch.Tensor,
        embedding: nn.Module | None,
        label: int | None,
        source: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.generator = bundle.model
        # CDC's frozen source under full fine-tuning: held in a tuple so it is no submodule (not
        # trained, not saved, not wrapped by DDP); it follows the generator's device when used.
        self._source = (source,) if source is not None else ()
        self.latents = nn.Parameter(latents)
        self.embedding = embedding
        self._inputs, self._standardise, self._label = bundle.forward_inputs, bundle.standardise, label

    def images(self, codes: torch.Tensor, generator: nn.Module | None = None) -> torch.Tensor:
        """The generator's (or `generator`'s) images for latents `codes` under the run's class, in [-1, 1]."""
        labels = (
            None if self._label is None else torch.full((codes.shape[0],), self._label, device=codes.device)
        )
        generator = self.generator if generator is None else generator
        return self._standardise(generator(*self._inputs(codes, labels)))

    def forward(
        self,
        z: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        jitter: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
        consistency: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Images for random latents `z` and/or reconstructions of training images `indices`
        (their latents plus `jitter`), in one generator call; with reconstructions, the latent
        regulariser against `prior` samples too; with `consistency`, the CDC term of the `z` images."""
        codes = ([z] if z is not None else []) + (
            [self.latents[indices] + jitter] if indices is not None else []
        )
        codes = torch.cat(codes)
        first = 0 if z is None else z.shape[0]
        if consistency:
            source = self._source[0].to(codes.device) if self._source else None
            images, term = with_consistency(
                self.generator, lambda g, c: self.images(c, g), codes, first, source
            )
        else:
            images, term = self.images(codes), None
        out = {"random": images[:first]} if z is not None else {}
        if term is not None:
            out["consistency"] = term
        if indices is not None:
            out |= {"recon": images[first:], "latent_reg": chamfer_to_prior(self.latents, prior)}
        return out


def prepare_model(config: TrainConfig) -> tuple[GeneratorBundle, LearnedEmbedding | None]:
    """Load the base, inject the configured adapters, swap in a learned class embedding."""
    bundle = load_generator(config.model, config.base_checkpoint, **config.model_options)
    check_class_label(config.class_label, bundle)
    prepare_trainables(config, bundle)
    embedding = (
        replace_class_embedding(bundle, start_class=config.class_label) if bundle.class_embedding else None
    )
    if embedding is not None:
        embedding.requires_grad_(True)
    bundle.model.eval()
    return bundle, embedding


def check_class_label(label: int | None, bundle: GeneratorBundle) -> None:
    """A class to adapt under must be one of the generator's own (a class-conditional one)."""
    if label is None:
        return
    if not bundle.num_classes:
        raise SettingError(
            "class_label", f"applies to class-conditional generators; {bundle.name} takes no class"
        )
    if label >= bundle.num_classes:
        raise SettingError(
            "class_label", f"must be below {bundle.num_classes} (the classes of {bundle.name}), got {label}"
        )


def _optimizer(config: TrainConfig, state: TrainState) -> torch.optim.Optimizer:
    embedding = {id(p) for p in state.embedding.parameters()} if state.embedding is not None else set()
    adapters = [p for p in trained_parameters(config, state.generator) if id(p) not in embedding]
    groups = [
        {"params": adapters, "lr": config.lr, "name": "adapters"},
        {"params": [state.latents], "lr": config.latent_lr, "name": "latents"},
    ]
    if state.embedding is not None:
        groups.append(
            {"params": list(state.embedding.parameters()), "lr": config.embedding_lr, "name": "embedding"}
        )
    return torch.optim.Adam(groups)


@dataclass
class Session:
    """One run in progress: config, folder, Accelerate, the trainable state and its optimiser."""

    config: TrainConfig
    paths: RunPaths
    accelerator: Accelerator
    bundle: GeneratorBundle
    state: TrainState
    """The unwrapped trainable state (what checkpoints read)."""
    model: nn.Module
    """The state as Accelerate prepared it (what the step calls)."""
    optimizer: Any
    scheduler: torch.optim.lr_scheduler.LambdaLR
    targets: torch.Tensor
    batch: int
    start: int = 0
    last_checkpoint: int | None = None
    perceptual: PerceptualLoss | None = None
    target_features: list[torch.Tensor] | None = None
    critic: Critic | None = None
    """The discriminator side of the adversarial recipe."""
    seconds_before: float = 0.0
    """Training seconds of the run's earlier segments (a resumed run's checkpoint says so)."""
    segment_began: float = 0.0
    """`time.monotonic()` when this segment's first step began."""

    def elapsed(self) -> float:
        """The run's training seconds so far, every segment counted (run.json and metrics.csv)."""
        return self.seconds_before + time.monotonic() - self.segment_began

    @classmethod
    def build(cls, config, paths, accelerator, bundle, embedding, data: ImageSet, latents, batch) -> Session:
        """The session before any checkpoint is restored or Accelerate wraps anything."""
        label = None if config.class_label is None else torch.full((2,), config.class_label)
        layout, output = probe_layout(
            bundle, config.channels_last, label, accelerator.autocast
        )  # before the optimizer and DDP
        images = fit_targets(bundle, output, data.images)
        source = (
            frozen_source(bundle.model) if config.consistency_weight and config.method == "full" else None
        )
        state = TrainState(bundle, latents, embedding, config.class_label, source)
        state.latents.requires_grad_(config.reconstructs)  # DDP refuses parameters that get no gradient
        optimizer = _optimizer(config, state)
        decay, every = config.lr_decay, config.lr_decay_every
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: decay ** (s // every))
        targets = images.to(accelerator.device).contiguous(memory_format=layout)
        return cls(config, paths, accelerator, bundle, state, state, optimizer, scheduler, targets, batch)

    @property
    def count(self) -> int:
        """Number of training images."""
        return self.targets.shape[0]

    def prepare_for_training(self) -> None:
        """Compile if asked, let Accelerate wrap the state, compute the targets' features once."""
        config = self.config
        if config.compile:
            import torch._dynamo as dynamo  # only here: importing it costs every CLI process 1-2 s

            # A fresh cache per run: graphs of earlier runs in this process (grad mode flips between
            # steps and previews) would otherwise use up the recompile limit, and later runs go eager.
            dynamo.reset()
            self.state.generator = torch.compile(self.state.generator)
        # The scheduler is stepped by hand once per optimizer update: prepared, Accelerate would
        # step it once per process, and the decay would come earlier the more processes run.
        self.model, self.optimizer = self.accelerator.prepare(self.state, self.optimizer)
        self.perceptual = build_perceptual(
            config.perceptual, config.perceptual_weight, config.perceptual_weights_path
        )
        if self.perceptual is not None:
            layout = torch.channels_last if config.channels_last else torch.contiguous_format
            self.perceptual = self.perceptual.to(self.accelerator.device, memory_format=layout)
            self.target_features = self.perceptual.target_features(self.targets)

    def reconstruction_parts(
        self, out: dict[str, torch.Tensor], local: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The supervised recipe's weighted terms for this process's reconstructions."""
        config, images = self.config, out["recon"]
        parts = {"l1": config.l1_weight * F.l1_loss(images.float(), self.targets[local])}
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(images, [f[local] for f in self.target_features])
        parts["latent_reg"] = config.latent_reg_weight * out["latent_reg"]
        if self.state.embedding is not None:
            parts["embedding"] = config.embedding_penalty * self.state.embedding.embedding.square().mean()
        return parts

    def averaged(self, parts: dict[str, torch.Tensor]) -> dict[str, float]:
        """Loss values as floats, averaged over processes."""
        values = torch.stack([v.detach().float() for v in parts.values()])
        if self.accelerator.num_processes > 1:
            values = self.accelerator.reduce(values, reduction="mean")
        return dict(zip(parts, values.tolist(), strict=True))

    def divergence_message(self, step: int, loss: float) -> str:
        """What to tell the user when the loss of the state before `step`'s update is not finite."""
        said = f"the loss became {loss} at step {step}; stopped before that step's update."
        if self.last_checkpoint is None:
            return f"{said} No checkpoint was written yet: start again with a lower --lr (--overwrite)"
        return (
            f"{said} {self.paths.checkpoint} holds step {self.last_checkpoint}, the last state whose "
            "loss was finite: continue from it with --resume and a lower --lr"
        )

    def extras(self) -> dict[str, torch.Tensor]:
        """What the adapter file carries besides the adapters: latents (and class embedding)."""
        extras = {"latents": self.state.latents} if self.config.reconstructs else {}
        if self.state.embedding is not None:
            extras["class_embedding"] = self.state.embedding.embedding
        return extras


def write_result(session: Session, path: Path | None = None) -> None:
    """adapters.safetensors, the shareable result (or, at `path`, a snapshot of the state now)."""
    save_result(session.config, session.bundle.model, path or session.paths.adapters, session.extras())


@torch.no_grad()
def write_preview(session: Session, step: int) -> Image.Image:
    """Rows: the first 8 targets, their reconstructions (when the recipe reconstructs), and 8
    random samples, the same draws each time: from N(0, I) for the adversarial recipe, from a
    Gaussian fitted to the current latents otherwise (as `gan-adapters sample` does)."""
    state, bundle, targets, config = session.state, session.bundle, session.targets, session.config
    shown = min(8, len(targets))
    latents = state.latents.detach()
    rows = [targets[:shown]]
    if config.reconstructs:
        rows.append(state.images(latents[:shown]).float())
    fitted = latents.cpu() if config.recipe == "supervised" else None
    preview = sample_latents(
        8, bundle.latent_shape, fitted_to=fitted, generator=step_generator(config.seed, PREVIEW_LATENTS)
    )
    rows.append(state.images(preview.to(targets.device)).float())
    grid = make_grid(torch.cat(rows), columns=8)
    save_png(grid, session.paths.samples / f"step-{step:06d}.png")
    return grid
