"""Learning rates chosen fairly: per method and domain, a short run per candidate on the tuning
images and seed, scored by KID against the domain's validation images (held out, never scored);
the lowest KID among runs that are not degenerate wins. Shards share the runs through locks."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from gan_adapters.evaluation.cells import cell_config, claim, read_result, run_cell
from gan_adapters.evaluation.evaluator import Evaluator
from gan_adapters.evaluation.grid import SweepConfig
from gan_adapters.evaluation.results import TUNING_COLUMNS, write_results
from gan_adapters.files import inside, slug

WAIT_SECONDS = 5.0
"""How often a shard looks whether another shard finished a tuning run it needs."""


def tuning_runs(config: SweepConfig) -> list[tuple[str, object, object, float]]:
    """(name, domain, method, lr) of every tuning run, in order."""
    return [
        (f"tune-{slug(domain.name)}-{slug(method.label)}-lr{lr:g}", domain, method, lr)
        for domain in config.tuning.tuned(config.domains)
        for method in config.methods
        for lr in method.lrs or []
    ]


def tune_learning_rates(
    config: SweepConfig, out: Path, evaluator: Evaluator, *, on_step=None, trust_code: bool = False
) -> dict[tuple[str, str], float]:
    """Run (or wait for) every tuning run; write out/tuning.csv; return {(domain, method): lr}."""
    runs = tuning_runs(config)
    if not runs:
        return {}
    eval_config = dataclasses.replace(config.eval, samples=config.tuning.samples)
    steps = config.tuning.steps or max(1, config.base.steps // 2)
    pending = list(runs)
    while pending:
        waiting = []
        for name, domain, method, lr in pending:
            folder = inside(out, "tuning", name)
            if read_result(folder) is not None:
                continue
            if not claim(folder):
                waiting.append((name, domain, method, lr))  # another shard is on it
                continue
            train_config = cell_config(
                config, domain, method, config.tuning.images, config.tuning.seed, lr=lr, steps=steps
            )
            row = {"cell": name, "domain": domain.name, "method": method.label}
            run_cell(
                train_config, folder, domain.validation, evaluator, eval_config, row, on_step, trust_code
            )
        pending = waiting
        if pending:
            time.sleep(WAIT_SECONDS)
    rows = [read_result(out / "tuning" / name) for name, *_ in runs]
    chosen = {}
    for key in dict.fromkeys((r["domain"], r["method"]) for r in rows):
        candidates = [r for r in rows if (r["domain"], r["method"]) == key]
        best = min(candidates, key=lambda r: (bool(r["degenerate"]), float(r["kid"])))
        for row in candidates:
            row["chosen"] = "yes" if row is best else ""
        chosen[key] = float(best["lr"])
    write_results(out / "tuning.csv", rows, TUNING_COLUMNS)
    if config.tuning.domain is not None:  # one row's rate for every domain
        chosen = {(d.name, m): lr for d in config.domains for (_, m), lr in chosen.items()}
    return chosen
