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

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.results import plot_results, read_results, results_table, write_results
from gan_adapters.files import inside, read_toml, slug
from gan_adapters.serial import Serialisable
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.surgery.summary import summary
from gan_adapters.training.adapted import load_run, refuse_untrusted_code
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths
from gan_adapters.training.trainer import train

log = logging.getLogger(__name__)


@dataclass
class Domain(Serialisable):
    """A target domain: the training images and the real set its samples are scored against."""

    config_name = "domain"

    name: str
    data: str
    real: str | None = None


@dataclass
class Method:
    """One row of the research table: an adapter config and, optionally, its own learning rate."""

    adapter: AdapterConfig
    label: str = ""
    lr: float | None = None

    def __post_init__(self) -> None:
        if not self.label:
            sizes = {k: v for k, v in self.adapter.sizes().items() if v is not None}
            self.label = self.adapter.kind + "".join(f"-{k}{v:g}" for k, v in sizes.items())


@dataclass
class SweepConfig:
    """A whole sweep, as read from its recipe."""

    base: TrainConfig
    domains: list[Domain]
    methods: list[Method]
    images: list[int] = field(default_factory=lambda: [25, 50, 100])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    eval: EvalConfig = field(default_factory=EvalConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepConfig:
        """Read a sweep recipe; relative folders are relative to the recipe file."""
        path = Path(path)
        data = read_toml(path, "sweep recipe")
        unknown = sorted(set(data) - {"base", "domains", "methods", "grid", "eval"})
        if unknown:
            raise ConfigError(f"unknown sweep recipe sections: {', '.join(unknown)}")

        def resolve(folder: str | None) -> str | None:
            return None if folder is None else str((path.parent / folder).resolve())

        domains = [Domain.from_dict(d) for d in data.get("domains", [])]
        for domain in domains:
            domain.data, domain.real = resolve(domain.data), resolve(domain.real)
        methods = []
        for entry in data.get("methods", []):
            entry = dict(entry)
            label, lr = entry.pop("label", ""), entry.pop("lr", None)
            methods.append(Method(AdapterConfig.from_dict(entry), label, lr))
        grid = data.get("grid", {})
        config = cls(
            base=TrainConfig.from_dict(data.get("base", {})), domains=domains, methods=methods,
            images=list(grid.get("images", [25, 50, 100])), seeds=list(grid.get("seeds", [0, 1, 2])),
            eval=EvalConfig.from_dict(data.get("eval", {})),
        )  # fmt: skip
        if not config.domains or not config.methods:
            raise ConfigError(f"{path} needs at least one [[domains]] and one [[methods]] entry")
        return config

    def cells(self) -> list[tuple[Domain, Method, int, int]]:
        """Every (domain, method, images, seed), in the order they run."""
        return [
            (d, m, n, s) for d in self.domains for n in self.images for s in self.seeds for m in self.methods
        ]


def cell_name(domain: Domain, method: Method, images: int, seed: int) -> str:
    """The cell's folder name and results key: domain and label slugged to one safe name."""
    return f"{slug(domain.name)}-{slug(method.label)}-n{images}-s{seed}"


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
    trust_code: bool = False,
) -> list[dict[str, str]]:
    """Run every cell not yet in `out/results.csv`; write the table and plot; return all rows.

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done'). Cell
    folders are always inside `out/cells`.
    """
    refuse_untrusted_code(config.base.model, Path("the sweep recipe"), trust_code)
    out = Path(out)
    results_path = out / "results.csv"
    rows = read_results(results_path)
    done = {row["cell"] for row in rows}
    evaluator = evaluator or Evaluator()
    cells = config.cells()
    for index, cell in enumerate(cells):
        name = cell_name(*cell)
        status = "skip" if name in done else "train"
        if on_cell:
            on_cell(index, len(cells), name, status)
        if status == "skip":
            continue
        rows.append(_run_cell(config, cell, inside(out, "cells", name), evaluator, on_step, trust_code))
        write_results(results_path, rows)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    (out / "results.md").write_text(results_table(rows))
    plot_results(rows, out / "results.png")
    return rows


def _run_cell(config: SweepConfig, cell, folder: Path, evaluator, on_step, trust_code) -> dict[str, object]:
    """Train one cell (resuming it if it was interrupted), score it, and return its row."""
    domain, method, images, seed = cell
    overrides = {"data": domain.data, "images": images, "seed": seed, "adapter": method.adapter}
    if method.lr is not None:
        overrides["lr"] = method.lr
    train_config = dataclasses.replace(config.base, **overrides)
    resume = RunPaths(folder).has_checkpoint()
    result = train(train_config, folder, resume=resume, overwrite=not resume, on_step=on_step)
    scores = evaluator.score_run(folder, domain.real or domain.data, config.eval, trust_code=trust_code)
    report = summary(load_run(folder, trust_code=trust_code).bundle.model)
    return {
        "cell": cell_name(*cell), "domain": domain.name, "method": method.label, "kind": method.adapter.kind,
        "ratio": f"{report.ratio:.4g}", "adapter_parameters": report.adapter_parameters, "images": images,
        "seed": seed, "steps": train_config.steps, "train_seconds": f"{result.seconds:.1f}",
        "final_l1": f"{result.final.get('l1', math.nan):.5f}", "kid": f"{scores.kid:.6g}",
        "kid_std": f"{scores.kid_std:.6g}", "kmmd": f"{scores.kmmd:.6g}", "fid": f"{scores.fid:.6g}",
    }  # fmt: skip
