"""One cell of a sweep: its recipe, training and scoring it, its result file, and the lock that
lets several processes (GPUs, SLURM array tasks) share one sweep folder without doing a cell twice.

A finished cell leaves `result.json` in its folder; results.csv is rebuilt from those files, so
shards running at once merge into one table, and a cell is done exactly when its result exists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from gan_adapters.adapted.run import load_run
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.grid import Domain, Method, SweepConfig
from gan_adapters.files import slug, take_lock, write_text_atomically
from gan_adapters.surgery import summary
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.trainables import trained_count
from gan_adapters.training.trainer import RunResult, train

RESULT_FILE = "result.json"
LOCK_FILE = "lock"


def cell_name(domain: Domain, method: Method, images: int, seed: int) -> str:
    """The cell's folder name and results key: domain and label slugged to one safe name."""
    return f"{slug(domain.name)}-{slug(method.label)}-n{images}-s{seed}"


def cell_config(
    config: SweepConfig, domain: Domain, method: Method, images: int, seed: int, **extra
) -> TrainConfig:
    """The training recipe of one cell: the base, the method's settings, the cell's grid values."""
    cell = {"data": domain.data, "images": images, "seed": seed, "adapter": method.adapter}
    return dataclasses.replace(config.base, **(method.train | cell | extra))


def read_result(folder: Path) -> dict[str, Any] | None:
    """A finished cell's row, or None while it is not finished."""
    path = folder / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def claim(folder: Path) -> bool:
    """Take the cell's lock (False: another live process holds it; a dead one's is taken over)."""
    return take_lock(folder / LOCK_FILE)


def finished_training(folder: Path, steps: int) -> RunResult | None:
    """The cell's run when it finished all `steps` (scored or not), else None."""
    paths = RunPaths(folder)
    if paths.summary.exists() and paths.adapters.exists():
        done = json.loads(paths.summary.read_text())
        if done.get("steps") == steps:
            return RunResult(paths, done["steps"], done.get("seconds", math.nan), done.get("final", {}))
    return None


def train_cell(train_config: TrainConfig, folder: Path, on_step=None, *, fresh: bool = False) -> RunResult:
    """Train the cell, resume it if interrupted, or take a run that finished but was not scored;
    `fresh`: start over, whatever the folder holds."""
    done = None if fresh else finished_training(folder, train_config.steps)
    if done is not None:
        return done
    paths = RunPaths(folder)
    resume = paths.has_checkpoint() and not fresh
    return train(train_config, folder, resume=resume, overwrite=not resume, on_step=on_step)


FIDELITY_DIVERSITY = ("precision", "recall", "density", "coverage", "intra_cluster_diversity")
"""The measures beside KID that a cell's row records (empty where a set was too small to measure)."""


def _optional(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def run_cell(
    train_config: TrainConfig,
    folder: Path,
    real: str | tuple[str, int],
    evaluator: Evaluator,
    eval_config: EvalConfig,
    row: dict[str, Any],
    on_step=None,
    trust_code: bool = False,
    *,
    fresh: bool = False,
) -> dict[str, Any]:
    """Train (resuming an interrupted run) and score one cell, write its result.json, release its
    lock; `row` holds the cell's own columns, the measured ones are added. `real` is a folder, or
    (folder, how many of its first images to leave out) as `Domain.scored_set` gives. `fresh`
    trains from scratch (see `train_cell`)."""
    result = train_cell(train_config, folder, on_step, fresh=fresh)
    run = load_run(folder, trust_code=trust_code)
    real_folder, leave_out = (real, 0) if isinstance(real, str) else real
    scores = evaluator.score_adapted(run, real_folder, eval_config, leave_out)
    if train_config.method == "full":
        ratio, trained = "full", trained_count(train_config, run.bundle.model)
    else:
        report = summary(run.bundle.model)
        ratio, trained = f"{report.ratio:.4g}", report.adapter_parameters
    row = row | {
        "recipe": train_config.recipe,
        "ratio": ratio,
        "adapter_parameters": trained,
        "file_bytes": RunPaths(folder).adapters.stat().st_size,
        "steps": train_config.steps,
        "lr": f"{train_config.lr:g}",
        "train_seconds": f"{result.seconds:.1f}",
        "final_l1": f"{result.final.get('l1', math.nan):.5f}",
        "kid": f"{scores.kid:.6g}",
        "kid_std": f"{scores.kid_std:.6g}",
        "kmmd": f"{scores.kmmd:.6g}",
        "fid": f"{scores.fid:.6g}",
        "real_images": scores.real,
        "spread": f"{scores.spread_generated / max(scores.spread_real, 1e-12):.3f}",
        **{name: _optional(getattr(scores, name)) for name in FIDELITY_DIVERSITY},
        "degenerate": scores.degenerate,
    }
    write_text_atomically(folder / RESULT_FILE, json.dumps(row, indent=1))
    (folder / LOCK_FILE).unlink(missing_ok=True)
    return row
