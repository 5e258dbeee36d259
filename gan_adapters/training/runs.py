"""A run folder: where its files live, preparing it, and its metrics log.

out/
  config.toml            the resolved recipe of the run
  metrics.csv            one row per step
  samples/step-NNNNNN.png  reconstructions (top) and random samples (bottom)
  checkpoint.pt          the last state whose loss was finite (written atomically)
  checkpoint.pt.sha256   its checksum, so a damaged file is detected on resume
  checkpoint-previous.pt the checkpoint before it (and its checksum): the fallback
  adapters.safetensors   the shareable result: adapters + learned latents and embedding
  run.json               what finished: steps, seconds, final losses
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_adapters.errors import RunFolderError
from gan_adapters.files import inside, write_text_atomically

METRIC_COLUMNS = (
    "step",
    "loss",
    "l1",
    "perceptual",
    "latent_reg",
    "embedding",
    "g_adv",
    "d_loss",
    "consistency",
    "lr",
    "seconds",
)
"""Terms a recipe does not have are written as 0."""


@dataclass(frozen=True)
class RunPaths:
    """Where a run's files live."""

    root: Path

    config = property(lambda self: self.root / "config.toml")
    metrics = property(lambda self: self.root / "metrics.csv")
    samples = property(lambda self: self.root / "samples")
    checkpoint = property(lambda self: self.root / "checkpoint.pt")
    checksum = property(lambda self: self.root / "checkpoint.pt.sha256")
    previous_checkpoint = property(lambda self: self.root / "checkpoint-previous.pt")
    previous_checksum = property(lambda self: self.root / "checkpoint-previous.pt.sha256")
    adapters = property(lambda self: self.root / "adapters.safetensors")
    best_adapters = property(lambda self: self.root / "adapters-best.safetensors")
    snapshots = property(lambda self: self.root / "snapshots")
    summary = property(lambda self: self.root / "run.json")

    def snapshot(self, step: int) -> Path:
        """The adapter file of the state after `step` steps (kept when the run selects its best)."""
        return self.snapshots / f"adapters-step-{step:06d}.safetensors"

    def _files(self) -> tuple[Path, ...]:
        return (
            self.config,
            self.metrics,
            self.checkpoint,
            self.checksum,
            self.previous_checkpoint,
            self.previous_checksum,
            self.adapters,
            self.best_adapters,
            self.summary,
        )

    def has_checkpoint(self) -> bool:
        """Whether there is a checkpoint (the newest or the one before) to resume from."""
        return self.checkpoint.exists() or self.previous_checkpoint.exists()

    def holds_a_run(self) -> bool:
        """Whether a run already wrote here."""
        return self.config.exists() or self.has_checkpoint()

    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse to clobber a run unless told; clear it with `overwrite`."""
        if resume and not self.has_checkpoint():
            raise RunFolderError(f"nothing to resume in {self.root}: no checkpoint.pt there")
        if self.holds_a_run() and not (resume or overwrite):
            raise RunFolderError(
                f"{self.root} already holds a run; pass --resume to continue it or --overwrite to start over"
            )
        for path in (*self._files(), self.samples):
            inside(self.root, path.name)  # a link planted in a run folder must not lead outside it
        for stale in self.root.glob(".*.*"):  # temporary files of writes that were killed
            if stale.is_file() and any(stale.name.startswith(f".{p.name}.") for p in self._files()):
                stale.unlink()
        if overwrite and not resume:
            for path in self._files():
                path.unlink(missing_ok=True)
            for sample in self.samples.glob("step-*.png"):
                sample.unlink()
        self.root.mkdir(parents=True, exist_ok=True)


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
        values = {k: row.get(k, 0.0) for k in METRIC_COLUMNS}
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in values.items()})
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv as a list of numeric rows."""
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def write_summary(path: Path, data: dict[str, Any]) -> None:
    """run.json, atomically."""
    write_text_atomically(path, json.dumps(data, indent=2))
