"""`sweep`: kinds x ratios x training-set sizes x seeds, each fine-tuned and scored; resumable.

A sweep recipe (TOML) holds a `[base]` training recipe, `[[domains]]` (image folders, and the
real set each is scored against), `[[methods]]` (adapter configs, each with an optional
learning rate), a `[grid]` of `images` and `seeds`, and `[eval]` settings. Every cell gets its
own run folder; a cell whose result is in results.csv is not run again, and a cell that was
interrupted resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.metrics import Scores
from gan_adapters.evaluation.results import (
    TUNING_COLUMNS,
    plot_results,
    read_results,
    results_table,
    write_results,
)
from gan_adapters.files import inside, read_toml, slug
from gan_adapters.serial import Serialisable
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.summary import AdapterSummary, summary
from gan_adapters.training.adapted import load_run, refuse_untrusted_code
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.trainer import RunResult, train

log = logging.getLogger(__name__)


@dataclass
class Domain(Serialisable):
    """A target domain: the training images, the real set its samples are scored against, and
    held-out images (never scored) on which learning rates are tuned."""

    config_name = "domain"

    name: str
    data: str
    real: str | None = None
    validation: str | None = None


TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"adapter", "data", "images", "seed"}


@dataclass
class Method:
    """One row of the research table: an adapter config, the training settings it changes
    (`recipe`, `lr`, `recon_weight`, ...), and optionally learning rates to tune among."""

    adapter: AdapterConfig
    label: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    lrs: list[float] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            sizes = {k: v for k, v in self.adapter.sizes().items() if v is not None}
            recipe = self.train.get("recipe", "supervised")
            blend = f"{self.train['recon_weight']:g}" if self.train.get("recon_weight") else ""
            prefix = "" if recipe == "supervised" else ("blended" + blend if blend else "adversarial") + "-"
            self.label = prefix + self.adapter.kind + "".join(f"-{k}{v:g}" for k, v in sizes.items())

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Method:
        """A `[[methods]]` table: training keys, `label`, `lrs`, and the adapter's keys."""
        entry = dict(entry)
        label, lrs = entry.pop("label", ""), entry.pop("lrs", None)
        train = {k: entry.pop(k) for k in list(entry) if k in TRAIN_FIELDS}
        return cls(AdapterConfig.from_dict(entry), label, train, list(lrs) if lrs else None)


@dataclass
class Tuning(Serialisable):
    """How learning rates are tuned: short runs on `images` training images at `seed`, scored
    by KID against the domain's validation images (never against the scored real set)."""

    config_name = "tuning"

    images: int = 25
    seed: int = 100
    steps: int | None = None
    """Steps per tuning run; None: half the base recipe's."""
    samples: int = 50


@dataclass
class SweepConfig:
    """A whole sweep, as read from its recipe."""

    base: TrainConfig
    domains: list[Domain]
    methods: list[Method]
    images: list[int] = field(default_factory=lambda: [25, 50, 100])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    eval: EvalConfig = field(default_factory=EvalConfig)
    tuning: Tuning = field(default_factory=Tuning)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepConfig:
        """Read a sweep recipe; relative folders are relative to the recipe file."""
        path = Path(path)
        data = read_toml(path, "sweep recipe")
        unknown = sorted(set(data) - {"base", "domains", "methods", "grid", "eval", "tuning"})
        if unknown:
            raise ConfigError(f"unknown sweep recipe sections: {', '.join(unknown)}")

        def resolve(folder: str | None) -> str | None:
            return None if folder is None else str((path.parent / folder).resolve())

        domains = [Domain.from_dict(d) for d in data.get("domains", [])]
        for domain in domains:
            domain.data, domain.real, domain.validation = map(
                resolve, (domain.data, domain.real, domain.validation)
            )
        grid = data.get("grid", {})
        config = cls(
            base=TrainConfig.from_dict(data.get("base", {})), domains=domains,
            methods=[Method.from_entry(entry) for entry in data.get("methods", [])],
            images=list(grid.get("images", [25, 50, 100])), seeds=list(grid.get("seeds", [0, 1, 2])),
            eval=EvalConfig.from_dict(data.get("eval", {})), tuning=Tuning.from_dict(data.get("tuning", {})),
        )  # fmt: skip
        if not config.domains or not config.methods:
            raise ConfigError(f"{path} needs at least one [[domains]] and one [[methods]] entry")
        for method in config.methods:
            if method.lrs and any(d.validation is None for d in config.domains):
                raise ConfigError(
                    f"method {method.label!r} tunes lrs: every domain needs validation = FOLDER"
                )
        return config

    def cells(self) -> list[tuple[Domain, Method, int, int]]:
        """Every (domain, method, images, seed), in the order they run."""
        return [
            (d, m, n, s) for d in self.domains for n in self.images for s in self.seeds for m in self.methods
        ]


def cell_name(domain: Domain, method: Method, images: int, seed: int) -> str:
    """The cell's folder name and results key: domain and label slugged to one safe name."""
    return f"{slug(domain.name)}-{slug(method.label)}-n{images}-s{seed}"


def cell_config(
    config: SweepConfig, domain: Domain, method: Method, images: int, seed: int, **extra
) -> TrainConfig:
    """The training recipe of one cell: the base, the method's settings, the cell's grid values."""
    cell = {"data": domain.data, "images": images, "seed": seed, "adapter": method.adapter}
    return dataclasses.replace(config.base, **(method.train | cell | extra))


def train_and_score(train_config: TrainConfig, folder: Path, real: str, evaluator: Evaluator, eval_config: EvalConfig,
                    on_step, trust_code: bool) -> tuple[RunResult, Scores, AdapterSummary]:  # fmt: skip
    """Train one run (resuming it if it was interrupted) and score its samples against `real`."""
    resume = RunPaths(folder).has_checkpoint()
    result = train(train_config, folder, resume=resume, overwrite=not resume, on_step=on_step)
    scores = evaluator.score_run(folder, real, eval_config, trust_code=trust_code)
    return result, scores, summary(load_run(folder, trust_code=trust_code).bundle.model)


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
    trust_code: bool = False,
) -> list[dict[str, str]]:
    """Tune learning rates where asked, then run every cell not yet in `out/results.csv`; write
    the table and plot; return all rows.

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done'). Cell
    folders are always inside `out/cells` (tuning runs inside `out/tuning`).
    """
    refuse_untrusted_code(config.base.model, Path("the sweep recipe"), trust_code)
    out = Path(out)
    evaluator = evaluator or Evaluator()
    chosen = tune_learning_rates(config, out, evaluator, on_step=on_step, trust_code=trust_code)
    results_path = out / "results.csv"
    rows = read_results(results_path)
    done = {row["cell"] for row in rows}
    cells = config.cells()
    for index, cell in enumerate(cells):
        name = cell_name(*cell)
        status = "skip" if name in done else "train"
        if on_cell:
            on_cell(index, len(cells), name, status)
        if status == "skip":
            continue
        lr = chosen.get((cell[0].name, cell[1].label))
        train_config = cell_config(config, *cell, **({"lr": lr} if lr is not None else {}))
        folder = inside(out, "cells", name)
        result, scores, report = train_and_score(
            train_config, folder, cell[0].real or cell[0].data, evaluator, config.eval, on_step, trust_code
        )
        rows.append(_result_row(name, cell, train_config, result, scores, report))
        write_results(results_path, rows)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    (out / "results.md").write_text(results_table(rows))
    plot_results(rows, out / "results.png")
    return rows


def _result_row(
    name: str, cell, train_config: TrainConfig, result, scores: Scores, report
) -> dict[str, object]:
    domain, method, images, seed = cell
    return {
        "cell": name, "domain": domain.name, "method": method.label, "recipe": train_config.recipe,
        "kind": method.adapter.kind, "ratio": f"{report.ratio:.4g}", "adapter_parameters": report.adapter_parameters,
        "images": images, "seed": seed, "steps": train_config.steps, "lr": f"{train_config.lr:g}",
        "train_seconds": f"{result.seconds:.1f}", "final_l1": f"{result.final.get('l1', math.nan):.5f}",
        "kid": f"{scores.kid:.6g}", "kid_std": f"{scores.kid_std:.6g}", "kmmd": f"{scores.kmmd:.6g}",
        "fid": f"{scores.fid:.6g}", "spread": f"{scores.spread_generated / max(scores.spread_real, 1e-12):.3f}",
        "degenerate": scores.degenerate,
    }  # fmt: skip


def tune_learning_rates(
    config: SweepConfig, out: Path, evaluator: Evaluator, *, on_step=None, trust_code: bool = False
) -> dict[tuple[str, str], float]:
    """For every method with `lrs`, per domain: a short run per learning rate on the tuning
    images and seed, scored by KID against the domain's validation images; the lowest KID among
    runs that are not degenerate wins. Resumable through out/tuning.csv; returns the choices."""
    tuning, path = config.tuning, out / "tuning.csv"
    rows = read_results(path)
    done = {row["cell"] for row in rows}
    eval_config = dataclasses.replace(config.eval, samples=tuning.samples)
    steps = tuning.steps or max(1, config.base.steps // 2)
    chosen = {}
    for domain in config.domains:
        for method in (m for m in config.methods if m.lrs):
            mine = []
            for lr in method.lrs:
                name = f"tune-{slug(domain.name)}-{slug(method.label)}-lr{lr:g}"
                if name not in done:
                    train_config = cell_config(
                        config, domain, method, tuning.images, tuning.seed, lr=lr, steps=steps
                    )
                    _, scores, _ = train_and_score(train_config, inside(out, "tuning", name), domain.validation,
                                                   evaluator, eval_config, on_step, trust_code)  # fmt: skip
                    rows.append({"cell": name, "domain": domain.name, "method": method.label, "lr": f"{lr:g}",
                                 "kid": f"{scores.kid:.6g}", "spread": f"{scores.spread_generated / max(scores.spread_real, 1e-12):.3f}",
                                 "degenerate": scores.degenerate, "chosen": ""})  # fmt: skip
                    write_results(path, rows, TUNING_COLUMNS)
                mine.append(next(r for r in rows if r["cell"] == name))
            best = min(mine, key=lambda r: (bool(r["degenerate"]), float(r["kid"])))
            for row in mine:
                row["chosen"] = "yes" if row is best else ""
            chosen[(domain.name, method.label)] = float(best["lr"])
    if rows:
        write_results(path, rows, TUNING_COLUMNS)
    return chosen
