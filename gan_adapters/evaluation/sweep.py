"""`sweep`: kinds x ratios x training-set sizes x seeds, each fine-tuned and scored; resumable.

A sweep recipe (TOML) holds a `[base]` training recipe, `[[domains]]` (image folders, and the
real set each is scored against), `[[methods]]` (adapter configs, each with an optional
learning rate), a `[grid]` of `images` and `seeds`, and `[eval]` settings. Every cell gets its
own run folder; a cell whose result is in results.csv is not run again, and a cell that was
interrupted resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.cells import cell_config, cell_name, claim, read_result, run_cell
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.results import plot_results, read_results, results_table, write_results
from gan_adapters.evaluation.tuning import tune_learning_rates
from gan_adapters.files import inside, read_toml, write_text_atomically
from gan_adapters.serial import Serialisable
from gan_adapters.surgery.config import AdapterConfig
from gan_adapters.training.adapted import refuse_untrusted_code
from gan_adapters.training.recipe import TrainConfig


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


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' (0 <= i < N) as (i, N): this process runs every N-th cell, starting at the i-th."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ConfigError(f"--shard takes i/N with 0 <= i < N (for example 0/4), got {text!r}")
    return shard


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
    trust_code: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> list[dict[str, str]]:
    """Tune learning rates where asked, then run every cell of this shard not yet finished;
    write the merged table and plot; return the rows finished so far (in grid order).

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done'; 'busy'
    when another process holds the cell). Cell folders are always inside `out/cells`.
    """
    refuse_untrusted_code(config.base.model, Path("the sweep recipe"), trust_code)
    out = Path(out)
    evaluator = evaluator or Evaluator()
    chosen = tune_learning_rates(config, out, evaluator, on_step=on_step, trust_code=trust_code)
    cells = config.cells()
    for index, cell in enumerate(cells):
        name, folder = cell_name(*cell), inside(out, "cells", cell_name(*cell))
        mine = index % shard[1] == shard[0]
        status = (
            "skip" if read_result(folder) is not None or not mine else "train" if claim(folder) else "busy"
        )
        if on_cell:
            on_cell(index, len(cells), name, status)
        if status != "train":
            continue
        domain, method, images, seed = cell
        lr = chosen.get((domain.name, method.label))
        train_config = cell_config(config, *cell, **({"lr": lr} if lr is not None else {}))
        row = {"cell": name, "domain": domain.name, "method": method.label, "kind": method.adapter.kind,
               "images": images, "seed": seed}  # fmt: skip
        run_cell(
            train_config, folder, domain.real or domain.data, evaluator, config.eval, row, on_step, trust_code
        )
        _write_tables(out, cells)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    return _write_tables(out, cells)


def _write_tables(out: Path, cells: list) -> list[dict[str, str]]:
    """results.csv, results.md and results.png from every finished cell's result.json."""
    rows = [r for cell in cells if (r := read_result(out / "cells" / cell_name(*cell))) is not None]
    write_results(out / "results.csv", rows)
    rows = read_results(out / "results.csv")  # as strings, the way every reader sees them
    if rows:
        write_text_atomically(out / "results.md", results_table(rows))
        plot_results(rows, out / "results.png")
    return rows
