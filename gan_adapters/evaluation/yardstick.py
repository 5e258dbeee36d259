"""The field's view of a sweep: fidelity and diversity per row, as a table, a plot and a sample grid.

Precision and density say whether samples look like the target (fidelity); recall, coverage and
the intra-cluster diversity whether they cover its variety (diversity). A row is one method (a
recipe, a kind or full fine-tuning); its cells differ by seed, and each number is their mean ±
std. `sweep` writes `yardstick.md`, `fidelity-diversity.png` and `samples-per-row.png`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from gan_adapters.evaluation.results import mean_std, pyplot
from gan_adapters.images import labelled_rows, save_png

MEASURES = (
    ("kid", "KID x1000", 1000.0),
    ("precision", "precision", 1.0),
    ("recall", "recall", 1.0),
    ("coverage", "coverage", 1.0),
    ("intra_cluster_diversity", "intra-cluster diversity", 1.0),
)
"""The table's measures: (results.csv column, heading, scale)."""


def _values(members: list[dict[str, str]], column: str, scale: float) -> list[float]:
    values = [scale * float(r[column]) for r in members if r.get(column) not in (None, "")]
    return [v for v in values if math.isfinite(v)]


def summarise(rows: list[dict[str, str]]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Per (domain, images, method): how many cells (seeds), the mean and std over them of every
    measure, what trained, the recipe and how many cells were degenerate."""
    groups: dict[tuple[str, int, str], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["domain"], int(row["images"]), row["method"]), []).append(row)
    table = {}
    for key, members in groups.items():
        entry: dict[str, Any] = {"cells": len(members), "recipe": members[0].get("recipe") or "supervised"}
        entry["trained"] = int(members[0].get("adapter_parameters") or 0)
        entry["degenerate"] = sum(bool(r.get("degenerate")) for r in members)
        for column, _, scale in MEASURES:
            values = _values(members, column, scale)
            entry[column] = mean_std(values) if values else None
        table[key] = entry
    return table


def with_pooled(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """`rows`, preceded, for each training-set size that more than one domain ran, by the same
    cells under one domain "all N domains": a row's mean over every domain and seed, the overview
    to read first (its ± then spans domains as well as seeds)."""
    domains: dict[str, list[str]] = {}
    for row in rows:
        names = domains.setdefault(row["images"], [])
        if row["domain"] not in names:
            names.append(row["domain"])
    pooled = [
        row | {"domain": f"all {len(domains[row['images']])} domains"}
        for row in rows
        if len(domains[row["images"]]) > 1
    ]
    return pooled + rows


def _shown(value: tuple[float, float] | None, column: str) -> str:
    if value is None:
        return "-"
    digits = 1 if column == "kid" else 2
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def yardstick_table(rows: list[dict[str, str]]) -> str:
    """Markdown: per domain and training-set size, a row per method with what it trains and each
    measure (mean ± std over seeds); ⚠ counts the cells whose samples were degenerate. Sizes that
    several domains ran open with every domain together (`with_pooled`)."""
    table, measured = summarise(with_pooled(rows)), {row["domain"] for row in rows}
    lines = []
    for domain, images in dict.fromkeys((d, n) for d, n, _ in table):
        over = "seeds" if domain in measured else "domains and seeds"
        lines += [f"### {domain}, {images} images (mean ± std over {over})", ""]
        lines.append(
            "| method | trained parameters | cells | " + " | ".join(h for _, h, _ in MEASURES) + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(MEASURES))
        for (d, n, method), entry in table.items():
            if (d, n) != (domain, images):
                continue
            warn = f" ⚠ {entry['degenerate']} degenerate" if entry["degenerate"] else ""
            cells = [_shown(entry[column], column) for column, _, _ in MEASURES]
            lines.append(
                f"| {method} | {entry['trained']:,} | {entry['cells']}{warn} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    lines.append(
        "KID: lower is better; the others higher (precision: fidelity; recall, coverage and the "
        "intra-cluster diversity: diversity). ⚠: samples far less varied than the real set."
    )
    return "\n".join(lines)


def plot_fidelity_diversity(rows: list[dict[str, str]], path: Path) -> Path | None:
    """Per domain and training-set size (every domain together first, `with_pooled`): precision
    (fidelity) against recall and against the intra-cluster diversity (diversity), a point per
    method with its spread over seeds."""
    plt = pyplot()
    if plt is None:
        return None
    table = summarise(with_pooled(rows))
    panels = list(dict.fromkeys((d, n) for d, n, _ in table))
    figure, axes = plt.subplots(len(panels), 2, figsize=(12, 4.2 * len(panels)), squeeze=False)
    methods = list(dict.fromkeys(m for _, _, m in table))
    colours = plt.get_cmap("tab20")(range(len(methods)))
    for row_axes, (domain, images) in zip(axes, panels, strict=True):
        for axis, column in zip(row_axes, ("recall", "intra_cluster_diversity"), strict=True):
            for method, colour in zip(methods, colours, strict=True):
                entry = table.get((domain, images, method))
                if entry is None or entry[column] is None or entry["precision"] is None:
                    continue
                (x, dx), (y, dy) = entry[column], entry["precision"]
                marker = (
                    "s" if method.startswith("full") else ("o" if entry["recipe"] != "supervised" else "^")
                )
                axis.errorbar(x, y, xerr=dx, yerr=dy, marker=marker, color=colour, capsize=3, label=method)
            axis.set_xlabel(column.replace("_", " ") + " (diversity, higher is better)")
            axis.set_ylabel("precision (fidelity, higher is better)")
            axis.set_title(f"{domain}, {images} images")
            axis.grid(alpha=0.3)
    # One legend beside the top row, outside the points; markers large enough to tell apart.
    axes[0][1].legend(fontsize=8, markerscale=1.4, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def samples_per_row(runs: dict[str, Any], path: Path, count: int = 8, seed: int = 0) -> Path | None:
    """`count` samples per row (method), drawn with the same latent seed from each row's finished
    run ({method label: AdaptedRun}), one labelled row each, in the order given."""
    from gan_adapters.adapted.run import draw_latents, generate

    if not runs:
        return None
    with torch.no_grad():
        rows = {label: generate(run, draw_latents(run, count, seed=seed)) for label, run in runs.items()}
    return save_png(labelled_rows(rows), path)
