"""A sweep's results: results.csv (one row per cell), the research-layout table and the plot."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

from gan_adapters.files import write_atomically

log = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "cell",
    "domain",
    "method",
    "recipe",
    "kind",
    "ratio",
    "adapter_parameters",
    "file_bytes",
    "images",
    "seed",
    "steps",
    "lr",
    "train_seconds",
    "final_l1",
    "kid",
    "kid_std",
    "kmmd",
    "fid",
    "real_images",
    "spread",
    "precision",
    "recall",
    "density",
    "coverage",
    "intra_cluster_diversity",
    "degenerate",
)
"""results.csv; `adapter_parameters` counts what trained (every generator parameter under full
fine-tuning, whose `ratio` is "full"), `file_bytes` the size of the file to share; `spread` is the
samples' feature spread over the real set's; precision, recall, density and coverage (k = 5) and the intra-cluster diversity (`evaluation/diversity.py`) measure
fidelity and diversity apart; `degenerate` says why a cell's samples copy, collapse or miss the real
variety (empty when they do not)."""
TUNING_COLUMNS = ("cell", "domain", "method", "lr", "kid", "spread", "degenerate", "chosen")


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv (or tuning.csv) rows (empty when there is none yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_results(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = RESULT_COLUMNS) -> None:
    """Rows as CSV, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def aggregate(rows: list[dict[str, str]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Per (domain, method, images): mean and std over seeds of KID (x1000) and KMMD, the ratio,
    recipe and learning rate, and how many seeds were degenerate."""
    groups: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["domain"], row["method"], int(row["images"])), []).append(row)
    table = {}
    for key, members in groups.items():
        kid_mean, kid_std = mean_std([1000 * float(r["kid"]) for r in members])
        kmmd_mean, kmmd_std = mean_std([float(r["kmmd"]) for r in members])
        table[key] = {
            "kid": kid_mean,
            "kid_std": kid_std,
            "kmmd": kmmd_mean,
            "kmmd_std": kmmd_std,
            "ratio": math.inf if members[0]["ratio"] == "full" else float(members[0]["ratio"]),
            "seeds": len(members),
            "recipe": members[0].get("recipe") or "supervised",
            "lr": members[0].get("lr") or "",
            "degenerate": sum(bool(r.get("degenerate")) for r in members),
        }
    return table


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    text = f"{entry['kid']:.1f} ± {entry['kid_std']:.1f} / {entry['kmmd']:.4f} ± {entry['kmmd_std']:.4f}"
    return text + (f" ⚠ {entry['degenerate']}/{entry['seeds']} degenerate" if entry["degenerate"] else "")


def results_table(rows: list[dict[str, str]]) -> str:
    """Markdown in the research table's layout: rows method (with its ratio and learning rate),
    columns training-set sizes; cells whose samples were degenerate are marked ⚠."""
    table = aggregate(rows)
    lines = []
    for domain in dict.fromkeys(r["domain"] for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["domain"] == domain))
        sizes = sorted({n for (d, _, n) in table if d == domain})
        lines += [f"### {domain}: KID x1000 / KMMD (mean ± std over seeds; lower is better)", ""]
        lines.append("| method | ratio vs ssa | lr | " + " | ".join(f"{n} images" for n in sizes) + " |")
        lines.append("|---|---|---|" + "---|" * len(sizes))
        for method in methods:
            first = next(v for (d, m, _), v in table.items() if d == domain and m == method)
            cells = [_cell(table.get((domain, method, n))) for n in sizes]
            ratio = "full" if math.isinf(first["ratio"]) else f"{first['ratio']:.3g}"
            lines.append(f"| {method} | {ratio} | {first['lr']} | " + " | ".join(cells) + " |")
        lines.append("")
    if any(v["degenerate"] for v in table.values()):
        lines.append(
            "⚠: samples far less varied than the real set (near-constant); their KID compares nothing."
        )
    return "\n".join(lines)


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or None (with a warning) when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    return plt


def plot_results(rows: list[dict[str, str]], path: Path) -> Path | None:
    """KID and KMMD against the parameter ratio (log scale), one line per recipe and training-set
    size; degenerate cells are red crosses."""
    plt = pyplot()
    if plt is None:
        return None
    table = aggregate(rows)
    domains = list(dict.fromkeys(r["domain"] for r in rows))
    figure, axes = plt.subplots(len(domains), 2, figsize=(11, 3.8 * len(domains)), squeeze=False)
    for row_axes, domain in zip(axes, domains, strict=True):
        for axis, metric, label in ((row_axes[0], "kid", "KID x1000"), (row_axes[1], "kmmd", "KMMD")):
            _plot_metric(axis, {k: v for k, v in table.items() if k[0] == domain}, metric)
            axis.set_xscale("log", base=2)
            axis.set_xlabel("adapter parameters / ssa parameters")
            axis.set_ylabel(label)
            axis.set_title(f"{domain}: {label} (lower is better)")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_metric(axis, table: dict[tuple[str, str, int], dict[str, Any]], metric: str) -> None:
    lines = sorted({(v["recipe"], n) for (_, _, n), v in table.items()})
    for recipe, n in lines:
        points = sorted(
            (v["ratio"], v[metric], v[f"{metric}_std"], v["degenerate"])
            for (_, _, size), v in table.items()
            if size == n and v["recipe"] == recipe and math.isfinite(v["ratio"])  # full FT has no ratio
        )
        if not points:
            continue
        xs, ys, errs, bad = zip(*points, strict=True)
        axis.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=f"{recipe}, {n} images")
        flagged = [(x, y) for x, y, b in zip(xs, ys, bad, strict=True) if b]
        if flagged:
            axis.scatter(*zip(*flagged, strict=True), marker="x", s=80, color="red", zorder=3)
