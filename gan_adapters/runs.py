"""A run folder: its files, its checkpoint (written atomically), its metrics, and reloading it.

out/
  config.toml            the resolved recipe of the run
  metrics.csv            one row per step
  samples/step-NNNNNN.png  reconstructions (top) and random samples (bottom)
  checkpoint.pt          the last good state; a kill at any moment leaves it readable
  adapters.safetensors   the shareable result: adapters + learned latents and embedding
  run.json               what finished: steps, seconds, final losses
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_adapters.errors import GanAdaptersError
from gan_adapters.models import GeneratorBundle, load_generator
from gan_adapters.recipe import TrainConfig
from gan_adapters.saving import load_adapters, read_extras, write_atomically

METRIC_COLUMNS = ("step", "loss", "l1", "perceptual", "latent_reg", "embedding", "lr", "seconds")


class RunFolderError(GanAdaptersError, ValueError):
    """The output folder cannot be used as asked (a run already there, nothing to resume...)."""


@dataclass(frozen=True)
class RunPaths:
    """Where a run's files live."""

    root: Path

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.csv")
    samples = property(lambda self: self.root / "samples")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    adapters = property(lambda self: self.root / "adapters.safetensors")
    summary = property(lambda self: self.root / "run.json")

    def _files(self) -> tuple[Path, ...]:
        return (self.config, self.metrics, self.checkpoint, self.adapters, self.summary)

    def holds_a_run(self) -> bool:
        """Whether a run already wrote here."""
        return self.config.exists() or self.checkpoint.exists()

    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse to clobber a run unless told; clear it with `overwrite`."""
        if resume and not self.checkpoint.exists():
            raise RunFolderError(f"nothing to resume in {self.root}: no checkpoint.pt there")
        if self.holds_a_run() and not (resume or overwrite):
            raise RunFolderError(
                f"{self.root} already holds a run; pass --resume to continue it or --overwrite to start over"
            )
        for stale in self.root.glob(".*.*"):  # temporary files of writes that were killed
            if stale.is_file() and any(stale.name.startswith(f".{p.name}.") for p in self._files()):
                stale.unlink()
        if overwrite and not resume:
            for path in self._files():
                path.unlink(missing_ok=True)
            for sample in self.samples.glob("step-*.png"):
                sample.unlink()
        self.root.mkdir(parents=True, exist_ok=True)


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename: the old checkpoint or the new, never half."""
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint, loaded without executing pickled code (tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunFolderError(f"cannot read checkpoint {path}: {exc}") from exc


class MetricsLog:
    """metrics.csv, appended row by row; on resume, rows past the checkpoint are dropped."""

    def __init__(self, path: Path, resume_from: int | None = None) -> None:
        self.path = path
        kept: list[dict[str, str]] = []
        if resume_from is not None and path.exists():
            with path.open(newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_from]
        self._handle = path.open("w", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=METRIC_COLUMNS)
        self._writer.writeheader()
        self._writer.writerows(kept)

    def write(self, row: dict[str, float]) -> None:
        self._writer.writerow(
            {k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in METRIC_COLUMNS}
        )
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv as a list of numeric rows."""
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


class LearnedEmbedding(nn.Module):
    """One learned class embedding standing in for a class-conditional generator's table."""

    def __init__(self, initial: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Parameter(initial.detach().clone())

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(classes.shape[0], -1)


def mean_embedding(module: nn.Module) -> torch.Tensor:
    """The mean of a pretrained class-embedding table (nn.Embedding or a bias-free nn.Linear)."""
    if isinstance(module, nn.Embedding):
        return module.weight.mean(0)
    if isinstance(module, nn.Linear):
        return module.weight.mean(1)
    raise GanAdaptersError(f"cannot read class embeddings from a {type(module).__name__}")


def replace_class_embedding(bundle: GeneratorBundle, initial: torch.Tensor | None = None) -> LearnedEmbedding:
    """Swap the bundle's class-embedding module for one learned embedding (default: the mean)."""
    parent_path, _, attr = bundle.class_embedding.rpartition(".")
    parent = bundle.model.get_submodule(parent_path)
    original = getattr(parent, attr)
    learned = LearnedEmbedding(mean_embedding(original) if initial is None else initial)
    setattr(parent, attr, learned.to(next(original.parameters()).device))
    return learned


@dataclass
class AdaptedRun:
    """A trained domain, ready to generate: the adapted bundle and its learned latents."""

    bundle: GeneratorBundle
    latents: torch.Tensor | None
    config: TrainConfig | None


def load_run(source: str | Path, model: str | None = None, **model_options) -> AdaptedRun:
    """A run folder, or an adapter file plus a model name, as an adapted generator."""
    source = Path(source)
    config = None
    if source.is_dir():
        paths = RunPaths(source)
        if not paths.adapters.exists():
            raise RunFolderError(f"{source} has no adapters.safetensors: the run did not finish")
        config = TrainConfig.from_toml(paths.config)
        adapter_file = paths.adapters
        bundle = load_generator(
            model or config.model, config.base_checkpoint, **(config.model_options | model_options)
        )
    else:
        if model is None:
            raise RunFolderError(f"{source} is an adapter file: also say which model it adapts (--model)")
        adapter_file = source
        bundle = load_generator(model, **model_options)
    extras = read_extras(adapter_file)
    bundle.model = load_adapters(bundle.model, adapter_file)
    if "class_embedding" in extras and bundle.class_embedding:
        replace_class_embedding(bundle, extras["class_embedding"])
    bundle.model.eval()
    return AdaptedRun(bundle, extras.get("latents"), config)


def write_summary(path: Path, data: dict[str, Any]) -> None:
    """run.json, atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2)))
