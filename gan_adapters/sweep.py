"""`sweep`: kinds x ratios x training-set sizes x seeds, each fine-tuned and scored; resumable.

A sweep recipe (TOML) holds a `[base]` training recipe, `[[domains]]` (image folders, and the
real set each is scored against), `[[methods]]` (adapter configs, each with an optional
learning rate), a `[grid]` of `images` and `seeds`, and `[eval]` settings. Every cell gets its
own run folder; a cell whose result is in results.csv is not run again, and a cell that was
interrupted resumes from its checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_adapters.config import AdapterConfig, build_strictly, read_toml
from gan_adapters.errors import ConfigError
from gan_adapters.evaluation import EvalConfig, Evaluator
from gan_adapters.recipe import TrainConfig
from gan_adapters.runs import RunPaths, load_run
from gan_adapters.saving import write_atomically
from gan_adapters.summary import summary

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "cell", "domain", "method", "kind", "ratio", "adapter_parameters", "images", "seed", "steps",
    "train_seconds", "final_l1", "kid", "kid_std", "kmmd", "fid",
)  # fmt: skip


@dataclass
class Domain:
    """A target domain: the training images and the real set its samples are scored against."""

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

        domains = [build_strictly(Domain, d, "domain") for d in data.get("domains", [])]
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
            eval=build_strictly(EvalConfig, data.get("eval", {}), "eval"),
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
    """The cell's folder name and results key (labels reduced to letters, digits and dashes)."""
    label = re.sub(r"[^A-Za-z0-9.]+", "-", method.label).strip("-")
    return f"{domain.name}-{label}-n{images}-s{seed}"


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv rows (empty when there is none yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    evaluator: Evaluator | None = None,
    on_cell: Callable[[int, int, str, str], None] | None = None,
    on_step=None,
) -> list[dict[str, str]]:
    """Run every cell not yet in `out/results.csv`; write the table and plot; return all rows.

    `on_cell(index, total, name, status)` reports progress ('skip', 'train', 'done').
    """
    from gan_adapters.trainer import train

    out = Path(out)
    results_path = out / "results.csv"
    rows = read_results(results_path)
    done = {row["cell"] for row in rows}
    evaluator = evaluator or Evaluator()
    cells = config.cells()
    for index, (domain, method, images, seed) in enumerate(cells):
        name = cell_name(domain, method, images, seed)
        if name in done:
            if on_cell:
                on_cell(index, len(cells), name, "skip")
            continue
        if on_cell:
            on_cell(index, len(cells), name, "train")
        overrides = {"data": domain.data, "images": images, "seed": seed, "adapter": method.adapter}
        if method.lr is not None:
            overrides["lr"] = method.lr
        train_config = dataclasses.replace(config.base, **overrides)
        paths = RunPaths(out / "cells" / name)
        resume = paths.checkpoint.exists()
        result = train(train_config, paths.root, resume=resume, overwrite=not resume, on_step=on_step)
        scores = evaluator.score_run(paths.root, domain.real or domain.data, config.eval)
        report = summary(load_run(paths.root).bundle.model)
        rows.append({
            "cell": name, "domain": domain.name, "method": method.label, "kind": method.adapter.kind,
            "ratio": f"{report.ratio:.4g}", "adapter_parameters": report.adapter_parameters, "images": images,
            "seed": seed, "steps": train_config.steps, "train_seconds": f"{result.seconds:.1f}",
            "final_l1": f"{result.final.get('l1', math.nan):.5f}", "kid": f"{scores.kid:.6g}",
            "kid_std": f"{scores.kid_std:.6g}", "kmmd": f"{scores.kmmd:.6g}", "fid": f"{scores.fid:.6g}",
        })  # fmt: skip
        _write_results(results_path, rows)
        if on_cell:
            on_cell(index, len(cells), name, "done")
    (out / "results.md").write_text(results_table(rows))
    plot_results(rows, out / "results.png")
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def aggregate(rows: list[dict[str, str]]) -> dict[tuple[str, str, int], dict[str, float]]:
    """Mean and std over seeds of KID (x1000) and KMMD per (domain, method, images)."""
    groups: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["domain"], row["method"], int(row["images"])), []).append(row)
    table = {}
    for key, members in groups.items():
        kid_mean, kid_std = _mean_std([1000 * float(r["kid"]) for r in members])
        kmmd_mean, kmmd_std = _mean_std([float(r["kmmd"]) for r in members])
        table[key] = {"kid": kid_mean, "kid_std": kid_std, "kmmd": kmmd_mean, "kmmd_std": kmmd_std,
                      "ratio": float(members[0]["ratio"]), "seeds": len(members)}  # fmt: skip
    return table


def results_table(rows: list[dict[str, str]]) -> str:
    """Markdown in the research table's layout: rows method and ratio, columns training-set sizes."""
    table = aggregate(rows)
    lines = []
    for domain in dict.fromkeys(r["domain"] for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["domain"] == domain))
        sizes = sorted({n for (d, _, n) in table if d == domain})
        lines += [f"### {domain}: KID x1000 / KMMD (mean ± std over seeds; lower is better)", ""]
        lines.append("| method | ratio vs ssa | " + " | ".join(f"{n} images" for n in sizes) + " |")
        lines.append("|---|---|" + "---|" * len(sizes))
        for method in methods:
            cells = []
            for n in sizes:
                entry = table.get((domain, method, n))
                cells.append(
                    "-" if entry is None else
                    f"{entry['kid']:.1f} ± {entry['kid_std']:.1f} / {entry['kmmd']:.4f} ± {entry['kmmd_std']:.4f}"
                )  # fmt: skip
            ratio = next(v["ratio"] for (d, m, _), v in table.items() if d == domain and m == method)
            lines.append(f"| {method} | {ratio:.3g} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_results(rows: list[dict[str, str]], path: Path) -> Path | None:
    """KID and KMMD against the parameter ratio (log scale), one line per training-set size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    table = aggregate(rows)
    domains = list(dict.fromkeys(r["domain"] for r in rows))
    figure, axes = plt.subplots(len(domains), 2, figsize=(10, 3.6 * len(domains)), squeeze=False)
    for row_axes, domain in zip(axes, domains, strict=True):
        for axis, metric, label in ((row_axes[0], "kid", "KID x1000"), (row_axes[1], "kmmd", "KMMD")):
            for n in sorted({n for (d, _, n) in table if d == domain}):
                points = sorted((v["ratio"], v[metric], v[f"{metric}_std"]) for (d, _, size), v in table.items()
                                if d == domain and size == n)  # fmt: skip
                xs, ys, errs = zip(*points, strict=True)
                axis.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=f"{n} images")
            axis.set_xscale("log", base=2)
            axis.set_xlabel("adapter parameters / ssa parameters")
            axis.set_ylabel(label)
            axis.set_title(f"{domain}: {label} (lower is better)")
            axis.grid(alpha=0.3)
            axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
