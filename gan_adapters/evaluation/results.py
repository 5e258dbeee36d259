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
    "cell", "domain", "method", "kind", "ratio", "adapter_parameters", "images", "seed", "steps",
    "train_seconds", "final_l1", "kid", "kid_std", "kmmd", "fid",
)  # fmt: skip


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv rows (empty when there is none yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


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
