"""The fine-tuning loop: Noguchi & Harada's supervised recipe on Accelerate.

No discriminator: each target image owns a learnable latent; the loss is L1 + perceptual
between G(z_i + jitter) and image i, plus the latent regulariser (and an L2 penalty on a
learned class embedding). Only adapters, latents and that embedding train; the generator
stays in eval mode, so its normalisation statistics never move.

Every random draw of step s comes from a generator seeded by (seed, s): a resumed run, or
one split over several processes, sees exactly the batches and noise of an uninterrupted
single-process run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch import nn

from gan_adapters.data import load_image_folder
from gan_adapters.errors import GanAdaptersError
from gan_adapters.images import make_grid, save_png
from gan_adapters.inject import inject
from gan_adapters.latents import chamfer_to_prior, sample_latents
from gan_adapters.manage import trainable_parameters
from gan_adapters.models import GeneratorBundle, load_generator
from gan_adapters.perceptual import build_perceptual
from gan_adapters.recipe import TrainConfig
from gan_adapters.runs import (
    MetricsLog,
    RunFolderError,
    RunPaths,
    read_checkpoint,
    replace_class_embedding,
    write_checkpoint,
    write_summary,
)
from gan_adapters.saving import adapter_tensors, copy_adapter_tensors, save_adapters

log = logging.getLogger(__name__)


class TrainingDivergedError(GanAdaptersError, FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class StepReport:
    """What one step measured (losses averaged over processes)."""

    step: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """Where a finished run put its files, and what it measured last."""

    paths: RunPaths
    steps: int
    seconds: float
    final: dict[str, float]


class TrainState(nn.Module):
    """Everything that trains, in one module so Accelerate/DDP sees one set of gradients."""

    def __init__(self, bundle: GeneratorBundle, latents: torch.Tensor, embedding: nn.Module | None) -> None:
        super().__init__()
        self.generator = bundle.model
        self.latents = nn.Parameter(latents)
        self.embedding = embedding
        self._inputs = bundle.forward_inputs

    def forward(self, indices: torch.Tensor, jitter: torch.Tensor, prior: torch.Tensor):
        z = self.latents[indices] + jitter
        images = self.generator(*self._inputs(z, None))
        return images, chamfer_to_prior(self.latents, prior)


def cpu_only_launch() -> bool:
    """Whether this is a multi-process launch without GPUs (torchrun on CPUs), which
    Accelerate runs as MULTI_CPU only when told it is on the CPU."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def prepare_model(config: TrainConfig) -> tuple[GeneratorBundle, nn.Module | None]:
    """Load the base, inject the configured adapters, swap in a learned class embedding."""
    bundle = load_generator(config.model, config.base_checkpoint, **config.model_options)
    bundle.model = inject(bundle.model, config=config.adapter, example_inputs=bundle.example_inputs())
    embedding = replace_class_embedding(bundle) if bundle.class_embedding else None
    if embedding is not None:
        embedding.requires_grad_(True)
    bundle.model.eval()
    return bundle, embedding


def _optimizer(config: TrainConfig, state: TrainState) -> torch.optim.Optimizer:
    embedding = {id(p) for p in state.embedding.parameters()} if state.embedding is not None else set()
    adapters = [p for p in trainable_parameters(state.generator) if id(p) not in embedding]
    groups = [
        {"params": adapters, "lr": config.lr, "name": "adapters"},
        {"params": [state.latents], "lr": config.latent_lr, "name": "latents"},
    ]
    if state.embedding is not None:
        groups.append(
            {"params": list(state.embedding.parameters()), "lr": config.embedding_lr, "name": "embedding"}
        )
    return torch.optim.Adam(groups)


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
    accelerator: Accelerator | None = None,
) -> RunResult:
    """Fine-tune the adapters of `config.model` on `config.data`; files go to `out`.

    `on_step` receives every step's losses (on the main process), for progress bars.
    """
    paths = RunPaths(Path(out))
    if accelerator is None:
        # Accelerate keeps one process-wide state and refuses a second Accelerator with another
        # precision; each run gets its own (the process group, if any, is kept).
        AcceleratorState._reset_state()
    accelerator = accelerator or Accelerator(
        mixed_precision=config.precision, gradient_accumulation_steps=config.grad_accum, cpu=cpu_only_launch()
    )
    if accelerator.is_main_process:
        paths.prepare(resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()
    checkpoint = read_checkpoint(paths.checkpoint) if resume else None
    if checkpoint is not None:
        _check_resumable(checkpoint, config, paths)

    torch.manual_seed(config.seed)
    bundle, embedding = prepare_model(config)
    data = load_image_folder(config.data, bundle.image_size, config.images, config.strict_data)
    count, world = len(data), accelerator.num_processes
    batch = min(config.batch_size, count)
    if batch % world:
        raise GanAdaptersError(
            f"batch size {batch} does not split over {world} processes; pick a multiple of {world}"
        )
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    bundle.model.to(memory_format=layout)  # before the optimizer and DDP see the parameters
    shape = (count, *bundle.latent_shape)
    initial = (
        torch.zeros(shape)
        if config.latent_init == "zeros"
        else torch.randn(shape, generator=_step_generator(config.seed, -2))
    )
    state = TrainState(bundle, initial, embedding)
    optimizer = _optimizer(config, state)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: config.lr_decay ** (s // config.lr_decay_every)
    )
    start = 0
    if checkpoint is not None:
        start = _restore(checkpoint, paths.checkpoint, state, optimizer, scheduler)
    raw_state = state
    if config.compile:
        state.generator = torch.compile(state.generator)
    # The scheduler is stepped by hand once per optimizer update: prepared, Accelerate would
    # step it once per process, and the decay would come earlier the more processes run.
    state, optimizer = accelerator.prepare(state, optimizer)

    device = accelerator.device
    targets = data.images.to(device).contiguous(memory_format=layout)
    perceptual = build_perceptual(config.perceptual, config.perceptual_weight, config.perceptual_weights_path)
    target_features = None
    if perceptual is not None:
        perceptual = perceptual.to(device, memory_format=layout)
        target_features = perceptual.target_features(targets)

    if accelerator.is_main_process:
        paths.config.write_text(config.to_toml())
    metrics = MetricsLog(paths.metrics, resume_from=start) if accelerator.is_main_process else None
    began, losses = time.monotonic(), {}
    try:
        for step in range(start, config.steps):
            gen = _step_generator(config.seed, step)
            indices = torch.randperm(count, generator=gen)[:batch]
            jitter = torch.randn((batch, *bundle.latent_shape), generator=gen) * config.latent_jitter
            prior = torch.randn((10 * count, *bundle.latent_shape), generator=gen)
            mine = slice(accelerator.process_index, None, world)
            local = indices[mine].to(device)
            with accelerator.accumulate(state), accelerator.autocast():
                images, latent_reg = state(local, jitter[mine].to(device), prior.to(device))
                parts = {"l1": config.l1_weight * F.l1_loss(images.float(), targets[local])}
                if perceptual is not None:
                    parts["perceptual"] = perceptual(images, [f[local] for f in target_features])
                parts["latent_reg"] = config.latent_reg_weight * latent_reg
                if raw_state.embedding is not None:
                    parts["embedding"] = (
                        config.embedding_penalty * raw_state.embedding.embedding.square().mean()
                    )
                loss = sum(parts.values())
                losses = _averaged(accelerator, parts | {"loss": loss})
                if not all(torch.isfinite(torch.tensor(v)) for v in losses.values()):
                    raise TrainingDivergedError(
                        f"the loss became {losses['loss']} at step {step}; stopped without saving, so "
                        f"{paths.checkpoint} still holds the last good state (lower --lr and --resume)"
                    )
                accelerator.backward(loss)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            done = step + 1
            losses["lr"] = scheduler.get_last_lr()[0]
            losses["seconds"] = time.monotonic() - began
            if accelerator.is_main_process:
                metrics.write({"step": done, "perceptual": 0.0, "embedding": 0.0} | losses)
                if on_step is not None:
                    on_step(StepReport(done, config.steps, losses))
                if done % config.sample_every == 0 or done == config.steps:
                    _write_samples(paths, done, raw_state, bundle, targets, config.seed)
            if done % config.checkpoint_every == 0 or done == config.steps:
                _checkpoint(accelerator, paths, config, done, bundle.model, raw_state, optimizer, scheduler)
    finally:
        if metrics is not None:
            metrics.close()
    seconds = time.monotonic() - began
    if accelerator.is_main_process:
        extras = {"latents": raw_state.latents}
        if raw_state.embedding is not None:
            extras["class_embedding"] = raw_state.embedding.embedding
        save_adapters(bundle.model, paths.adapters, extras=extras)
        write_summary(paths.summary, {"steps": config.steps, "resumed_from": start, "seconds": seconds,
                                      "processes": world, "final": losses})  # fmt: skip
    accelerator.wait_for_everyone()
    return RunResult(paths, config.steps, seconds, losses)


def _averaged(accelerator: Accelerator, parts: dict[str, torch.Tensor]) -> dict[str, float]:
    values = torch.stack([v.detach().float() for v in parts.values()])
    if accelerator.num_processes > 1:
        values = accelerator.reduce(values, reduction="mean")
    return dict(zip(parts, values.tolist(), strict=True))


def _check_resumable(checkpoint: dict, config: TrainConfig, paths: RunPaths) -> None:
    saved = TrainConfig.from_dict(checkpoint["config"])
    saved.steps, saved.data = config.steps, config.data
    if saved != config:
        changed = [k for k, v in saved.to_dict().items() if v != config.to_dict()[k]]
        raise RunFolderError(
            f"--resume needs the same settings as the run in {paths.root}; these differ: {', '.join(changed)}"
        )
    if checkpoint["step"] >= config.steps:
        raise RunFolderError(
            f"the run in {paths.root} already reached step {checkpoint['step']}; ask for more --steps"
        )


def _restore(checkpoint: dict, path: Path, state: TrainState, optimizer, scheduler) -> int:
    copy_adapter_tensors(adapter_tensors(state.generator), checkpoint["adapters"], path)
    with torch.no_grad():
        state.latents.copy_(checkpoint["latents"])
        if state.embedding is not None:
            state.embedding.embedding.copy_(checkpoint["class_embedding"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    return int(checkpoint["step"])


def _checkpoint(
    accelerator, paths, config, step, generator: nn.Module, state: TrainState, optimizer, scheduler
) -> None:
    if accelerator.is_main_process:
        payload = {
            "step": step,
            "config": config.to_dict(),
            "adapters": {k: v.detach().cpu().clone() for k, v in adapter_tensors(generator).items()},
            "latents": state.latents.detach().cpu().clone(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        if state.embedding is not None:
            payload["class_embedding"] = state.embedding.embedding.detach().cpu().clone()
        write_checkpoint(paths.checkpoint, payload)
    accelerator.wait_for_everyone()


@torch.no_grad()
def _write_samples(paths, step, state: TrainState, bundle: GeneratorBundle, targets, seed: int) -> None:
    """Rows: the first 8 targets, their reconstructions, and 8 random samples (the same draws
    each time, from a Gaussian fitted to the current latents, as `gan-adapters sample` does)."""
    shown = min(8, len(targets))
    device = targets.device
    latents = state.latents.detach()
    recon = state.generator(*bundle.forward_inputs(latents[:shown], None))
    preview = sample_latents(
        8, bundle.latent_shape, fitted_to=latents.cpu(), generator=_step_generator(seed, -1)
    )
    random = state.generator(*bundle.forward_inputs(preview.to(device), None))
    grid = make_grid(torch.cat([targets[:shown], recon.float(), random.float()]), columns=8)
    save_png(grid, paths.samples / f"step-{step:06d}.png")
