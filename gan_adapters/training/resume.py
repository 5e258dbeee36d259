"""Checkpoints of a fine-tuning run: writing them (with a checksum and one older copy kept),
checking that a resume asks for something compatible, and restoring the state bit for bit."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from gan_adapters.errors import CheckpointError, RunFolderError
from gan_adapters.files import read_checkpoint, write_checkpoint, write_text_atomically
from gan_adapters.surgery import is_adapter_key
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.trainables import restore_trained, trained_tensors

if TYPE_CHECKING:
    from gan_adapters.training.session import Session

log = logging.getLogger(__name__)

SAFE_TO_CHANGE = (
    "steps",
    "lr",
    "latent_lr",
    "embedding_lr",
    "d_lr",
    "sample_every",
    "checkpoint_every",
    "compile",
    "data",
    "log_with",
)
"""Options a resumed run may change: they do not change what the checkpoint holds. `data` may
move, but its images must be the same (checked by content)."""
LR_FIELDS = {"adapters": "lr", "latents": "latent_lr", "embedding": "embedding_lr"}
"""Which option sets the learning rate of each optimiser group."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's values (identifies the training images across folders)."""
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def mutable_base_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors the base keeps as plain attributes (not parameters or buffers), which its forward
    may update: a hand-written spectral norm's u vector. Checkpointed so a resume is bit-exact."""
    return {
        f"{path}:{name}": value.detach().cpu().clone()
        for path, module in model.named_modules()
        if not is_adapter_key(path)
        for name, value in module.__dict__.items()
        if isinstance(value, torch.Tensor)
    }


def _restore_base_state(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    for key, value in saved.items():
        path, _, name = key.rpartition(":")
        module = model.get_submodule(path)
        current = module.__dict__.get(name)
        device = current.device if isinstance(current, torch.Tensor) else value.device
        module.__dict__[name] = value.to(device)


def write_training_checkpoint(
    session: Session, step: int, base_state: dict[str, torch.Tensor] | None = None
) -> None:
    """checkpoint.pt for the state after `step` updates (`base_state`: the base's mutable state
    then, read before the step's forward; default: now), its checksum beside it, and the
    checkpoint it replaces kept as checkpoint-previous.pt (main process only)."""
    paths, state = session.paths, session.state
    payload = {
        "base_state": mutable_base_state(session.bundle.model) if base_state is None else base_state,
        "step": step,
        "seconds": session.elapsed(),
        "config": session.config.to_dict(),
        "targets": tensor_digest(session.targets),
        "adapters": {
            k: v.detach().cpu().clone()
            for k, v in trained_tensors(session.config, session.bundle.model).items()
        },
        "latents": state.latents.detach().cpu().clone(),
        "optimizer": session.optimizer.state_dict(),
        "scheduler": session.scheduler.state_dict(),
    }
    if state.embedding is not None:
        payload["class_embedding"] = state.embedding.embedding.detach().cpu().clone()
    if session.critic is not None:
        payload |= session.critic.state()
    if paths.checkpoint.exists():
        os.replace(paths.checkpoint, paths.previous_checkpoint)
        if paths.checksum.exists():
            os.replace(paths.checksum, paths.previous_checksum)
    write_checkpoint(paths.checkpoint, payload)
    write_text_atomically(paths.checksum, file_digest(paths.checkpoint))
    session.last_checkpoint = step


def _read_verified(path: Path, checksum: Path) -> dict:
    if checksum.exists() and checksum.read_text().strip() != file_digest(path):
        raise CheckpointError(f"{path} does not match its checksum ({checksum.name}): it is damaged")
    return read_checkpoint(path)


def read_latest_checkpoint(paths: RunPaths) -> dict:
    """The newest readable checkpoint of a run: checkpoint.pt, or checkpoint-previous.pt when
    the newest is missing, truncated or damaged (said in a warning)."""
    problems = []
    for path, checksum in (
        (paths.checkpoint, paths.checksum),
        (paths.previous_checkpoint, paths.previous_checksum),
    ):
        if not path.exists():
            continue
        try:
            checkpoint = _read_verified(path, checksum)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            log.warning("resuming from %s: %s", path.name, "; ".join(problems))
        return checkpoint
    raise RunFolderError(
        f"nothing to resume in {paths.root}: " + ("; ".join(problems) or "no checkpoint.pt there")
    )


def check_resumable(checkpoint: dict, config: TrainConfig, paths: RunPaths) -> dict[str, list]:
    """Refuse a resume that changes what the checkpoint holds; return what changed safely."""
    try:
        saved = TrainConfig.from_dict(checkpoint["config"])
        step = int(checkpoint["step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{paths.checkpoint} is not a checkpoint of this version: {exc}") from exc
    old, new = saved.to_dict(), config.to_dict()
    changed = [k for k in old if old[k] != new[k]]
    unsafe = [f"`{k}` (was {old[k]!r}, now {new[k]!r})" for k in changed if k not in SAFE_TO_CHANGE]
    if unsafe:
        raise RunFolderError(
            f"`resume` needs the same settings as the run in {paths.root}; "
            f"these differ: {', '.join(unsafe)}; "
            f"only {', '.join(f'`{k}`' for k in SAFE_TO_CHANGE)} may change on resume"
        )
    if step > config.steps or (step == config.steps and paths.adapters.exists()):
        raise RunFolderError(
            f"the run in {paths.root} already reached step {step}; ask for more `steps` to go on"
        )
    return {k: [old[k], new[k]] for k in changed}


def restore(session: Session, checkpoint: dict, path: Path) -> None:
    """Put the checkpoint's state into a freshly built session (before Accelerate wraps it)."""
    if checkpoint.get("targets") != tensor_digest(session.targets):
        raise RunFolderError(
            f"the images in {session.config.data} are not the ones the run in {session.paths.root} "
            f"started with ({session.count} images now): resume with the original folder, or start anew"
        )
    state = session.state
    restore_trained(session.config, state.generator, checkpoint["adapters"], path)
    with torch.no_grad():
        state.latents.copy_(checkpoint["latents"])
        if state.embedding is not None:
            state.embedding.embedding.copy_(checkpoint["class_embedding"])
    session.optimizer.load_state_dict(checkpoint["optimizer"])
    session.scheduler.load_state_dict(checkpoint["scheduler"])
    _restore_base_state(session.bundle.model, checkpoint.get("base_state", {}))
    if session.critic is not None:
        session.critic.load(checkpoint, session.config.d_lr)
    _apply_learning_rates(session)
    session.start = session.last_checkpoint = int(checkpoint["step"])
    session.seconds_before = float(checkpoint.get("seconds", 0.0))  # absent in older checkpoints


def _apply_learning_rates(session: Session) -> None:
    """After loading, the optimiser holds the old base learning rates: set the configured ones."""
    scheduler = session.scheduler
    groups = session.optimizer.param_groups
    scheduler.base_lrs = [getattr(session.config, LR_FIELDS[g["name"]]) for g in groups]
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group, base in zip(groups, scheduler.base_lrs, strict=True):
        group["lr"] = base * factor
    scheduler._last_lr = [g["lr"] for g in groups]
