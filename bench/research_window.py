"""GPU queue item 3: train as much of the research sweep on the seed-like source as one window allows,
and, back on the CPU, score what the windows brought.

    python bench/research_window.py --out OUT --seconds 480       # on the GPU (bench/gpu_queue.sh 3)
    python bench/research_window.py --score                       # here, after unpacking the cells

The first window times a probe cell (`apc`, the slowest kind, 25 images) and sets the steps per
cell: the most of STEP_CHOICES at which one domain's seed-0 cells fit in what is left of the
window. steps.txt keeps that for every later window and for the scoring. Then it trains seed 0
of every domain, then the other seeds (sweep order `by-seed`, `--stage train --time-limit`),
starting from the cells earlier windows brought back, and packs the cells it trained, without their
checkpoints, into OUT/cells-1.tar.gz, cells-2.tar.gz, ... (adapters and latents in fp16, recipe,
metrics; each part under 15 MiB). Here: unpack every part into bench/gpu-results/research/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tarfile
import time
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from gan_adapters.evaluation.cells import cell_name
from gan_adapters.evaluation.evaluator import Evaluator
from gan_adapters.evaluation.grid import SweepConfig
from gan_adapters.evaluation.sweep import run_sweep, trained_cells

TEMPLATE = Path("recipes/research-emoji-biggan.toml")
RESULTS = Path("bench/gpu-results/research")
"""Where the windows' cells, steps.txt and, after scoring, the table and plot live."""
STEP_CHOICES = (10_000, 5_000, 3_000, 2_000, 1_000, 500)
PROBE_STEPS = 60
PACKED = ("adapters.safetensors", "run.json", "config.toml", "metrics.csv")
PART_BYTES = 15 * 2**20
"""A part of the packed cells, before compression: under the 16 MiB a file from a window may be."""


def sized(config: SweepConfig, steps: int) -> SweepConfig:
    """The recipe with `steps` per cell."""
    checkpoint_every = min(config.base.checkpoint_every, steps)
    base = dataclasses.replace(
        config.base, steps=steps, sample_every=steps, checkpoint_every=checkpoint_every
    )
    return dataclasses.replace(config, base=base)


def choose_steps(
    seconds_per_step: float, startup: float, seconds_left: float, cells: int, choices=STEP_CHOICES
) -> int:
    """The most steps per cell at which `cells` cells fit in `seconds_left` (the fewest otherwise)."""
    fitting = [s for s in choices if cells * (startup + s * seconds_per_step) <= seconds_left]
    return max(fitting) if fitting else min(choices)


def probe(config: SweepConfig, out: Path, steps: int) -> tuple[float, float]:
    """(seconds per step, start-up seconds) of the slowest method's cell."""
    slowest = max(config.methods, key=lambda m: m.adapter.kind == "apc")
    one = dataclasses.replace(
        sized(config, steps),
        domains=config.domains[:1],
        methods=[slowest],
        images=[max(config.images)],
        seeds=config.seeds[:1],
    )
    began = time.monotonic()
    run_sweep(one, out, stage="train", trust_code=True)
    wall = time.monotonic() - began
    trained = json.loads((out / "cells" / cell_name(*one.cells()[0]) / "run.json").read_text())["seconds"]
    return trained / steps, max(wall - trained, 0.0)


def window(args) -> None:
    """One GPU window: size the steps (first window only), train, pack."""
    began, config = time.monotonic(), SweepConfig.from_toml(args.template)

    def left() -> float:
        return args.seconds - (time.monotonic() - began)

    args.out.mkdir(parents=True, exist_ok=True)
    steps_file, estimate = args.previous / "steps.txt", None
    if steps_file.is_file():
        steps = int(steps_file.read_text())
    else:
        per_step, startup = probe(config, args.out / "probe", args.probe_steps)
        per_domain = len(config.methods) * len(config.images)
        steps = choose_steps(per_step, startup, left() - 60, per_domain, args.step_choices)
        estimate = startup + steps * per_step
        print(
            f"probe: {per_step * 1000:.1f} ms a step, {startup:.1f} s to start a cell -> {steps} steps a cell"
        )
    (args.out / "steps.txt").write_text(f"{steps}\n")
    sweep = args.out / "sweep"
    if (args.previous / "cells").is_dir():
        shutil.copytree(args.previous / "cells", sweep / "cells", dirs_exist_ok=True)
    full = dataclasses.replace(sized(config, steps), order="by-seed")  # every domain before more seeds
    if left() > 60:
        run_sweep(full, sweep, stage="train", time_limit=left() - 45, cell_seconds=estimate, trust_code=True)
    done = trained_cells(full, sweep)
    new = [cell_name(*cell) for cell in done if not (args.previous / "cells" / cell_name(*cell)).is_dir()]
    parts = pack(sweep / "cells", new, args.out)
    shutil.rmtree(sweep)
    shutil.rmtree(args.out / "probe", ignore_errors=True)
    print(
        f"{len(done)} of {len(full.cells())} cells trained at {steps} steps, {len(new)} in this window; "
        f"packed in {', '.join(p.name for p in parts) or 'nothing'}"
    )


def pack(cells: Path, names: list[str], out: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """The named cells, without checkpoints and with their adapter files in fp16, in
    OUT/cells-1.tar.gz, cells-2.tar.gz, ... of at most `part_bytes` before compression each."""
    groups: list[list[tuple[str, dict[str, Path]]]] = []
    size = 0
    for name in names:
        files = {n: cells / name / n for n in PACKED} | {"adapters.safetensors": halved(cells / name)}
        cell_bytes = sum(f.stat().st_size for f in files.values())
        if not groups or size + cell_bytes > part_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, files))
        size += cell_bytes
    parts = [out / f"cells-{i}.tar.gz" for i in range(1, len(groups) + 1)]
    for part, group in zip(parts, groups, strict=True):
        with tarfile.open(part, "w:gz") as tar:
            for name, files in group:
                for file_name, path in files.items():
                    tar.add(path, f"cells/{name}/{file_name}")
    return parts


def halved(cell: Path) -> Path:
    """The cell's adapter file with its float tensors (adapters, latents) in fp16, beside it."""
    half = cell / "adapters-fp16.safetensors"
    with safe_open(str(cell / "adapters.safetensors"), "pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        metadata = handle.metadata()
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, str(half), metadata)
    return half


def score(args, evaluator: Evaluator | None = None) -> None:
    """Here, on the CPU: score every cell the windows trained; table and plot in RESULTS."""
    steps = int((args.previous / "steps.txt").read_text())
    config = sized(SweepConfig.from_toml(args.template), steps)
    rows = run_sweep(config, args.previous, stage="score", evaluator=evaluator, trust_code=True)
    print(f"{len(rows)} cells scored: {args.previous / 'results.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--previous", type=Path, default=RESULTS, help="what earlier windows brought back")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seconds", type=float, default=480)
    parser.add_argument("--probe-steps", type=int, default=PROBE_STEPS)
    parser.add_argument("--step-choices", type=lambda s: tuple(map(int, s.split(","))), default=STEP_CHOICES)
    parser.add_argument("--score", action="store_true", help="score the cells in --previous (CPU)")
    args = parser.parse_args()
    if args.score:
        score(args)
    elif args.out is None:
        parser.error("--out is required for a training window")
    else:
        window(args)


if __name__ == "__main__":
    main()
