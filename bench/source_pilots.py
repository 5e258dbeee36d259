"""Pilots for a better emoji source: each candidate lever trained for the same wall-clock on the CPU,
scored at fixed times with the same measures (KID, FID, precision, recall, density, coverage).

A pilot is a pretraining run stopped at each checkpoint time (`--at`, minutes of training), scored
(300 EMA samples, classes drawn as in the data, against 300 random training images at 32 px,
FID Inception features, k = 5) and resumed bit-exactly, so scoring time never counts as training.
Each scored point is a row of OUT/pilots.csv; a rerun skips the rows already there and resumes the
runs under RUNS/<pilot>/, so a killed sweep goes on where it stopped.

    python bench/source_pilots.py --out bench/results/source-pilots --runs runs/pilots --threads 1 \
        --pilots lean,wide --at 5,10,15
    python bench/source_pilots.py --throughput 60 --threads 2     # images/s of each, alone
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_adapters.evaluation.evaluator import Evaluator
from gan_adapters.evaluation.pretrain_report import score_source
from gan_adapters.generators.sources import load_generator_file
from gan_adapters.pretraining.config import PretrainConfig
from gan_adapters.pretraining.loop import pretrain
from gan_adapters.training.data import load_image_tensor

ROOT = Path(__file__).resolve().parents[1]
DATA = {32: ROOT / "data" / "emoji-32-train.safetensors", 64: ROOT / "data" / "emoji-64-train.safetensors"}
SHIPPED_RUN = ROOT / "bench" / "results" / "cdcgan-emoji-32"

PILOTS: dict[str, dict] = {
    # The shipped source's settings from scratch: the control every lever is read against.
    "lean": {},
    # The shipped source itself (15,748 steps, 115 min) trained on: what more time buys.
    "lean-longer": {"init_from": SHIPPED_RUN},
    "wide": {"model": {"ch": 64}},
    "biggan-32": {
        "architecture": "biggan",
        "model": {"resolution": 32, "ch": 32, "attention": False},
        "g_lr": 1e-4,
        "d_lr": 4e-4,
        "beta1": 0.0,
    },
    "projected": {"discriminator": "projected"},
    "64px": {"model": {"resolution": 64, "z_dim": 120}},  # 5 z chunks at 64 px
    "balanced": {"balanced": True},
}
"""Each candidate lever as changes to the shipped source's pretraining settings (cdcgan, ch 32, 32 px)."""

COLUMNS = (
    "pilot",
    "minutes",
    "steps",
    "images_per_second",
    "kid_x1000",
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
)


def build_config(changes: dict) -> PretrainConfig:
    """The shipped source's settings with a pilot's changes."""
    options = {k: v for k, v in changes.items() if k != "init_from"}
    model = {"resolution": 32, "ch": 32} | options.pop("model", {})
    return PretrainConfig(**{"model": model, "checkpoint_every": 500} | options)


def done_rows(table: Path) -> set[tuple[str, float]]:
    """(pilot, minutes) already scored."""
    if not table.exists():
        return set()
    with table.open() as handle:
        return {(row["pilot"], float(row["minutes"])) for row in csv.DictReader(handle)}


def append_row(table: Path, row: dict) -> None:
    """One scored point, flushed at once (a killed sweep keeps it)."""
    new = not table.exists()
    with table.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def score_at_32(run: Path, images: torch.Tensor, labels: torch.Tensor, evaluator: Evaluator) -> dict:
    """The EMA generator's measures, its samples brought to 32 px (where every pilot is compared)."""
    generator, _ = load_generator_file(run / "generator-ema.safetensors")

    class At32(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.config = generator, generator.config

        def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            out = self.inner(z, y)
            return out if out.shape[-1] == 32 else F.interpolate(out, size=32, mode="area")

    return score_source(At32(), images, labels, samples=300, real=300, evaluator=evaluator)


def run_pilot(name: str, times: list[float], runs: Path, table: Path, evaluator: Evaluator) -> None:
    """Train one pilot to each time in turn, scoring after each; skip what the table already has."""
    changes, config = PILOTS[name], build_config(PILOTS[name])
    images32, labels32, _ = load_image_tensor(DATA[32])
    run, scored, trained = runs / name, done_rows(table), 0.0
    for minutes in times:
        if (name, minutes) in scored:
            trained = minutes
            continue
        config.minutes = minutes - trained
        resume = (run / "checkpoint.pt").exists()
        began = time.monotonic()
        card = pretrain(
            config,
            DATA[config.model.resolution],
            run,
            resume=resume,
            init_from=None if resume else changes.get("init_from"),
        )
        seconds = time.monotonic() - began
        numbers = score_at_32(run, images32, labels32, evaluator)
        logging.info("%s at %.0f min: %s", name, minutes, numbers)
        append_row(
            table,
            {
                "pilot": name,
                "minutes": minutes,
                "steps": card["steps"],
                "images_per_second": round(card["images_per_second"], 1),
            }
            | {k: numbers[k] for k in COLUMNS[4:]},
        )
        logging.info("%s segment took %.1f min of wall-clock", name, seconds / 60)
        trained = minutes


def measure_throughput(names: list[str], seconds: float, table: Path) -> None:
    """Images per second of each candidate alone (nothing else running: run it at a quiet moment),
    training for `seconds` from scratch in a scratch folder; one row each in `table`."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            config = build_config(PILOTS[name])
            config.minutes = seconds / 60
            card = pretrain(config, DATA[config.model.resolution], Path(scratch) / name)
            new = not table.exists()
            with table.open("a", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(["pilot", "threads", "seconds", "steps", "images_per_second"])
                writer.writerow(
                    [name, torch.get_num_threads(), seconds, card["steps"], card["images_per_second"]]
                )
            logging.info("%s: %.1f images/s", name, card["images_per_second"])


def report(table: Path, picture: Path) -> str:
    """The pilots' table as markdown (one row per pilot and time) and a plot of KID, precision and
    recall against training minutes, one line per pilot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        "| pilot | minutes | steps | images/s | KID x1000 | FID | precision | recall | density | coverage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name in dict.fromkeys(row["pilot"] for row in rows):
        mine = [row for row in rows if row["pilot"] == name]
        minutes = [float(row["minutes"]) for row in mine]
        for axis, measure in zip(axes, ("kid_x1000", "precision", "recall"), strict=True):
            axis.plot(minutes, [float(row[measure]) for row in mine], marker="o", label=name)
            axis.set_title(measure.replace("_x1000", " x1000"))
            axis.set_xlabel("training minutes (1 CPU thread)")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(picture, dpi=110)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "source-pilots")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "pilots")
    parser.add_argument(
        "--pilots", default=",".join(PILOTS), help=f"comma-separated, of: {', '.join(PILOTS)}"
    )
    parser.add_argument("--at", default="5,10,15", help="training minutes at which each pilot is scored")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--throughput", type=float, default=None, help="seconds: measure images/s alone instead of piloting"
    )
    parser.add_argument("--report", type=Path, default=None, help="print the table, plot it to this PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report is not None:
        print(report(args.out / "pilots.csv", args.report))
        return
    if args.throughput is not None:
        measure_throughput(args.pilots.split(","), args.throughput, args.out / "throughput.csv")
        return
    evaluator = Evaluator()
    for name in args.pilots.split(","):
        run_pilot(name, [float(t) for t in args.at.split(",")], args.runs, args.out / "pilots.csv", evaluator)


if __name__ == "__main__":
    main()
