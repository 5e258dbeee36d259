"""What the consistency regulariser (CDC) costs a step, with adapters (the source: the same model,
adapters disabled) and under full fine-tuning (the source: a frozen copy), in both recipes.

Each cell trains the demo's source recipe for `--steps` steps in this process and reads the
seconds column of its metrics.csv: the mean time a step over steps 10 to the end. Cells run in
rounds, alternating, so a machine that gets busier mid-run slows every cell alike.

    python bench/consistency_cost.py --out bench/results/consistency-cost --steps 30 --rounds 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from pathlib import Path

import torch

from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import read_metrics
from gan_adapters.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "demo-emoji-source.toml"


def step_seconds(config: TrainConfig, folder: Path, first: int = 10) -> float:
    """Mean seconds a step after the first `first` steps of one run."""
    rows = read_metrics(train(config, folder).paths.metrics)
    seconds = [float(r["seconds"]) for r in rows]
    times = [b - a for a, b in itertools.pairwise(seconds)][first - 1 :]
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = TrainConfig.from_toml(RECIPE)
    cells = list(itertools.product(("adapters", "full"), ("supervised", "adversarial"), (0.0, 1.0)))
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as work:
        for round_, (method, recipe, weight) in itertools.product(range(args.rounds), cells):
            name = f"{method}-{recipe}-cdc{weight:g}"
            config = TrainConfig.from_dict(
                base.to_dict()
                | {"method": method, "recipe": recipe, "consistency_weight": weight, "steps": args.steps}
                | {"sample_every": args.steps, "checkpoint_every": args.steps, "seed": round_}
            )
            times.setdefault(name, []).append(step_seconds(config, Path(work) / f"{name}-{round_}"))
            print(f"{name}: {1000 * times[name][-1]:.0f} ms/step", flush=True)
    result = {name: round(1000 * statistics.median(values), 1) for name, values in times.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ms-per-step.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
