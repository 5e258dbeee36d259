"""Stop at the best point: score every checkpoint's adapters of a run on held-out images and keep
the best beside the last (adapters-best.safetensors), the choice said in run.json.

Users of the field see adaptations overfit after about a thousand steps; a run with `select_by`
keeps an adapter file at every checkpoint (snapshots/), and this picks among them and the final
one by KID (lowest) or a fidelity/diversity measure (highest), on the recipe's `validation`
images: a set never scored for a results table.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from gan_adapters.adapted.run import load_run
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.files import write_atomically, write_text_atomically
from gan_adapters.generators.registry import refuse_untrusted_code
from gan_adapters.training.recipe import TrainConfig
from gan_adapters.training.runs import RunPaths


def candidates(paths: RunPaths) -> dict[int, Path]:
    """Adapter files by the step whose state they hold: the snapshots and the final file."""
    found = {
        int(p.stem.rsplit("-", 1)[1]): p for p in sorted(paths.snapshots.glob("adapters-step-*.safetensors"))
    }
    summary = json.loads(paths.summary.read_text()) if paths.summary.exists() else {}
    if paths.adapters.exists():
        found[int(summary.get("steps", max(found, default=0) + 1))] = paths.adapters
    return found


def select_best(
    run_folder: str | Path,
    evaluator: Evaluator,
    config: EvalConfig | None = None,
    *,
    trust_code: bool = False,
) -> dict:
    """Score each candidate on the recipe's validation images by its `select_by`, copy the best to
    adapters-best.safetensors, record {by, step, scores} in run.json and return it."""
    paths = RunPaths(Path(run_folder))
    recipe = TrainConfig.from_toml(paths.config)
    refuse_untrusted_code(recipe.model, paths.root, trust_code)
    config = config or EvalConfig()
    by, lower_is_better = recipe.select_by, recipe.select_by == "kid"
    scores: dict[int, float] = {}
    for step, adapter_file in candidates(paths).items():
        run = load_run(adapter_file, recipe.model, **recipe.model_options)
        run.config = recipe
        value = getattr(evaluator.score_adapted(run, recipe.validation, config), by)
        scores[step] = math.nan if value is None else float(value)
    ranked = [s for s in scores if not math.isnan(scores[s])]
    best = (min if lower_is_better else max)(ranked, key=scores.get) if ranked else max(scores)
    source = candidates(paths)[best]
    write_atomically(paths.best_adapters, lambda tmp: shutil.copyfile(source, tmp))
    selection = {"by": by, "step": best, "scores": {str(k): v for k, v in sorted(scores.items())}}
    summary = json.loads(paths.summary.read_text()) if paths.summary.exists() else {}
    write_text_atomically(paths.summary, json.dumps(summary | {"selection": selection}, indent=2))
    return selection
