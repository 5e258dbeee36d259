"""GPU queue item 4: how long `gan-adapters finetune` takes to adapt a BigGAN-128-shaped generator
with the paper's schedule (10,000 steps of 25 images), eager and compiled, on this machine.

Each mode runs the real CLI for a slice of the window, then is stopped; its metrics.csv gives the
time to the first step (start-up, data, model, compilation) and the steady time a step (median
after the first 20). The 10,000-step wall time is start-up + 10,000 x that: projected, not run.

    python bench/time_to_adapt.py --out OUT --seconds-per-mode 200          # on a GPU
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w
import torch

SCHEDULE_STEPS = 10_000
ROOT = Path(__file__).resolve().parents[1]


def recipe(args, mode: str) -> dict:
    """The paper's schedule (TrainConfig defaults) on BigGAN-128's shape, in this mode."""
    return {
        "model": str(ROOT / "bench" / "models.py") + ":biggan_128",
        "model_options": {"resolution": args.resolution, "ch": args.ch},
        "data": str(ROOT / "examples" / "data" / "emoji-faces"),
        "images": 25,
        "steps": args.steps,
        "adapter": {"kind": "apgc", "ratio": 4},
        "precision": args.precision,
        "compile": mode == "compiled",
        "sample_every": args.steps,
        "checkpoint_every": 1000,
        "batch_size": args.batch_size,
        "perceptual": args.perceptual,
    }


def run_mode(args, mode: str) -> dict:
    """Run finetune for at most the slice; what its metrics say. The run folder stays in --work;
    its log and metrics come to OUT as MODE-log.txt and MODE-metrics.csv (flat: a GPU window
    brings back a few files, two folders deep at most)."""
    folder = args.work / mode
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.toml").write_text(tomli_w.dumps(recipe(args, mode)))
    command = [
        sys.executable,
        "-m",
        "gan_adapters",
        "finetune",
        str(folder / "recipe.toml"),
        "--trust-code",
        "-o",
        str(folder / "run"),
        "--overwrite",
    ]
    began = time.monotonic()
    with (folder / "log.txt").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=args.seconds_per_mode)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    wall = time.monotonic() - began
    shutil.copy(folder / "log.txt", args.out / f"{mode}-log.txt")
    if not (folder / "run" / "metrics.csv").exists():
        raise SystemExit(
            f"{mode}: finetune wrote no metrics in {args.seconds_per_mode:.0f} s; see {mode}-log.txt"
        )
    shutil.copy(folder / "run" / "metrics.csv", args.out / f"{mode}-metrics.csv")
    with (folder / "run" / "metrics.csv").open() as handle:
        seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    per_step = statistics.median(
        [b - a for a, b in itertools.pairwise(seconds)][20:] or [seconds[-1] / len(seconds)]
    )
    startup = wall - (seconds[-1] - seconds[0])  # to the end of the first step: start-up and compilation
    return {
        "mode": mode,
        "steps_run": len(seconds),
        "startup_s": startup,
        "ms_per_step": 1000 * per_step,
        "images_per_s": args.batch_size / per_step,
        "projected_10k_min": (startup + SCHEDULE_STEPS * per_step) / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "time-to-adapt")
    parser.add_argument("--seconds-per-mode", type=float, default=200)
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--steps", type=int, default=SCHEDULE_STEPS, help="steps asked for (stopped by time)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--ch", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--precision", default="bf16" if torch.cuda.is_available() else "no")
    parser.add_argument("--perceptual", default="effnet-lite0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [run_mode(args, mode) for mode in args.modes.split(",")]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    lines = [
        f"BigGAN {args.resolution} px (ch={args.ch}) random weights, apgc ratio 4, batch {args.batch_size}, "
        f"{args.precision}, perceptual {args.perceptual}; {device}; torch {torch.__version__}",
        "",
        "| mode | steps run | start-up s | ms a step | images/s | 10,000 steps (projected) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['steps_run']} | {r['startup_s']:.0f} | {r['ms_per_step']:.1f} | "
            f"{r['images_per_s']:.0f} | {r['projected_10k_min']:.1f} min |"
        )
    (args.out / "time-to-adapt.md").write_text("\n".join(lines) + "\n")
    (args.out / "time-to-adapt.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
