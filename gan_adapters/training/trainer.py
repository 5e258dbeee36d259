"""The fine-tuning loop: Noguchi & Harada's supervised recipe on Accelerate.

No discriminator: each target image owns a learnable latent; the loss is L1 + perceptual
between G(z_i + jitter) and image i, plus the latent regulariser (and an L2 penalty on a
learned class embedding). Only adapters, latents and that embedding train; the generator
stays in eval mode, so its normalisation statistics never move.

Every random draw of step s comes from a generator seeded by (seed, s) (`seeding.py`): a
resumed run, or one split over several processes, sees exactly the batches and noise of an
uninterrupted single-process run. A checkpoint is written only once the loss of the state it
holds is known to be finite, so after a divergence the checkpoint on disk is a good state.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from gan_adapters.errors import ConfigError, RunInterruptedError, SettingError, TrainingDivergedError
from gan_adapters.faults import kill_point
from gan_adapters.files import folder_lock, removed_on_failure
from gan_adapters.training.adversarial import adversarial_parts
from gan_adapters.training.critic import build_critic
from gan_adapters.training.data import load_image_folder
from gan_adapters.training.interrupt import stop_between_steps
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.resume import (
    check_resumable,
    mutable_base_state,
    read_latest_checkpoint,
    restore,
    write_training_checkpoint,
)
from gan_adapters.training.runs import MetricsLog, RunPaths, write_summary
from gan_adapters.training.seeding import INITIAL_LATENTS, seed_global_rng, step_generator
from gan_adapters.training.session import (
    Session,
    cpu_only_launch,
    prepare_model,
    write_preview,
    write_result,
)
from gan_adapters.training.supervised import supervised_parts
from gan_adapters.training.tracking import log_images, tracker_config

log = logging.getLogger(__name__)


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


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[StepReport], None] | None = None,
    accelerator: Accelerator | None = None,
    discriminator: torch.nn.Module | None = None,
) -> RunResult:
    """Fine-tune the adapters of `config.model` on `config.data`; files go to `out`.

    The adversarial recipe trains against a projected discriminator, or `discriminator` (a
    module mapping images in [-1, 1] to one logit each; all its parameters train).

    `on_step` receives every step's losses (on the main process), for progress bars. With
    `resume`, the run in `out` continues from its checkpoint; the options listed in
    `resume.SAFE_TO_CHANGE` (such as a lowered `lr` after a divergence) may differ.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite deletes it: pick one")
    if not config.data:
        raise SettingError("data", "is missing: name the folder of target images")
    config = config.with_paths_from(Path.cwd())  # config.toml and checkpoints then work from anywhere
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = config.tf32
    paths = RunPaths(Path(out))
    accelerator = accelerator or _new_accelerator(config, paths)
    main_process = accelerator.is_main_process
    lock = folder_lock(paths.root, "the run folder") if main_process else nullcontext()
    cleanup = removed_on_failure(paths.root, paths.has_checkpoint) if main_process else nullcontext()
    with cleanup, lock:
        return _train(config, paths, accelerator, resume, overwrite, on_step, discriminator)


def _train(config, paths, accelerator, resume, overwrite, on_step, discriminator) -> RunResult:
    if accelerator.is_main_process:
        paths.prepare(resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()
    checkpoint = read_latest_checkpoint(paths) if resume else None
    changes = check_resumable(checkpoint, config, paths) if checkpoint is not None else {}
    session = _start(config, paths, accelerator, checkpoint, discriminator)
    if accelerator.is_main_process:
        paths.config.write_text(config.to_toml())
    if config.log_with:
        accelerator.init_trackers("gan-adapters", config=tracker_config(config))
    metrics = MetricsLog(paths.metrics, resume_from=session.start) if accelerator.is_main_process else None
    session.segment_began, losses = time.monotonic(), {}
    try:
        with stop_between_steps(accelerator.num_processes == 1) as stop:
            for step in range(session.start, config.steps):
                losses = _train_step(session, step)
                losses |= {"lr": session.scheduler.get_last_lr()[0], "seconds": session.elapsed()}
                _after_step(session, step + 1, losses, metrics, on_step)
                if stop.requested:
                    _stop_here(session, step + 1)
    finally:
        if metrics is not None:
            metrics.close()
    seconds = session.elapsed()
    if accelerator.is_main_process:
        write_training_checkpoint(session, config.steps)
        write_result(session)
        write_summary(
            paths.summary,
            {
                "steps": config.steps,
                "resumed_from": session.start,
                "seconds": seconds,
                "processes": accelerator.num_processes,
                "final": losses,
                "tf32": config.tf32,
                "resume_changes": changes,
            },
        )
    if config.log_with:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return RunResult(paths, config.steps, seconds, losses)


def _stop_here(session: Session, done: int) -> None:
    """After Ctrl-C: checkpoint the state after `done` steps (when its weights are finite; else the
    last checkpoint stands) and stop with where the run can go on from."""
    trainable = [p for group in session.optimizer.param_groups for p in group["params"]]
    if all(bool(torch.isfinite(p).all()) for p in trainable):
        write_training_checkpoint(session, done)
    held, where = session.last_checkpoint, f"stopped by Ctrl-C after step {done} of {session.config.steps}"
    if held is None:
        raise RunInterruptedError(f"{where}; nothing was checkpointed yet", 0)
    raise RunInterruptedError(
        f"{where}; {session.paths.checkpoint} holds step {held}: `resume` goes on from there", held
    )


def _new_accelerator(config: TrainConfig, paths: RunPaths) -> Accelerator:
    # Accelerate keeps one process-wide state and refuses a second Accelerator with another
    # precision; each run gets its own (the process group, if any, is kept).
    AcceleratorState._reset_state()
    return Accelerator(
        mixed_precision=config.precision,
        gradient_accumulation_steps=config.grad_accum,
        cpu=cpu_only_launch(),
        log_with=config.log_with or None,
        project_dir=str(paths.root / "logs"),
    )


def _start(config: TrainConfig, paths, accelerator, checkpoint: dict | None, discriminator) -> Session:
    """Load the base, inject, load the data, build the optimiser; restore a checkpoint."""
    torch.manual_seed(config.seed)
    bundle, embedding = prepare_model(config)
    data = load_image_folder(config.data, bundle.image_size, config.images, config.strict_data)
    batch = batch_per_step(config.batch_size, len(data), accelerator.num_processes)
    shape = (len(data), *bundle.latent_shape)
    initial = (
        torch.zeros(shape)
        if config.latent_init == "zeros"
        else torch.randn(shape, generator=step_generator(config.seed, INITIAL_LATENTS))
    )
    session = Session.build(config, paths, accelerator, bundle, embedding, data, initial, batch)
    if config.recipe == "adversarial":
        session.critic = build_critic(config, bundle.image_size, accelerator, discriminator)
    if checkpoint is not None:
        restore(session, checkpoint, paths.checkpoint)
    session.prepare_for_training()
    return session


def batch_per_step(batch_size: int, images: int, processes: int) -> int:
    """Images per step (at most all of them), rounded down to split evenly over the processes (with a
    notice); refused when there are fewer than one per process."""
    batch = min(batch_size, images)
    if batch < processes:
        raise ConfigError(
            f"a batch of {batch} images ({images} in the folder, --batch-size {batch_size}) cannot give "
            f"each of {processes} processes an image; use more images or fewer processes"
        )
    if batch % processes:
        log.warning(
            "a batch of %d images does not split over %d processes: %d per step instead",
            batch,
            processes,
            batch - batch % processes,
        )
    return batch - batch % processes


def _train_step(session: Session, step: int) -> dict[str, float]:
    """One step of the recipe; refuses (before updating) a state whose loss is not finite, and
    writes a due checkpoint only after its loss proved finite."""
    config, accelerator, critic = session.config, session.accelerator, session.critic
    seed_global_rng(config.seed, step)
    due = step % config.checkpoint_every == 0 and step > session.start
    base_state = mutable_base_state(session.bundle.model) if due else None  # before forward changes it
    with accelerator.accumulate(session.model), accelerator.autocast():
        parts = adversarial_parts(session, step) if critic is not None else supervised_parts(session, step)
        loss = sum(value for name, value in parts.items() if name != "d_loss")
        # Backward is queued before the losses are read (the step's one wait for the GPU); it only
        # fills gradients, so a loss found not finite still stops the run before any update.
        accelerator.backward(loss)
        losses = session.averaged(parts | {"loss": loss})
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDivergedError(session.divergence_message(step, losses["loss"]))
        if due:
            if accelerator.is_main_process:
                write_training_checkpoint(session, step, base_state)
                if config.select_by:
                    write_result(session, session.paths.snapshot(step))
            accelerator.wait_for_everyone()
        kill_point(f"step:{step}")
        # The generator steps before the critic's backward: under fp16 each optimizer step updates
        # the one GradScaler, so every backward must be unscaled by its own step, before the next update.
        session.optimizer.step()
        if accelerator.sync_gradients:
            session.scheduler.step()
        session.optimizer.zero_grad()
        if critic is not None:
            critic.update(accelerator, parts["d_loss"])
    return losses


def _after_step(session: Session, done: int, losses: dict[str, float], metrics, on_step) -> None:
    if not session.accelerator.is_main_process:
        return
    metrics.write({"step": done} | losses)
    if session.config.log_with:
        session.accelerator.log(losses, step=done)
    if on_step is not None:
        on_step(StepReport(done, session.config.steps, losses))
    if done % session.config.sample_every == 0 or done == session.config.steps:
        log_images(session.accelerator, write_preview(session, done), done)
