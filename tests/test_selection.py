"""Stop at the best point: a run with `select_by` keeps each checkpoint's adapters, and the best on
the validation images is copied beside the last, the choice said in run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gan_adapters as ga
from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.evaluation.selection import select_best
from gan_adapters.training.trainer import train
from tests.test_sweep import PooledPixels
from tests.test_training import tiny_config

VALIDATION = Path(__file__).resolve().parents[1] / "examples" / "data" / "emoji-faces-validation"


@pytest.mark.parametrize("measure", ["kid", "coverage"])
def test_the_best_checkpoint_by_a_measure_is_kept_beside_the_last(measure, tmp_path):
    config = tiny_config(steps=6, checkpoint_every=2, select_by=measure, validation=str(VALIDATION))
    result = train(config, tmp_path / "run")
    snapshots = sorted(p.name for p in result.paths.snapshots.iterdir())
    assert snapshots == ["adapters-step-000002.safetensors", "adapters-step-000004.safetensors"]
    evaluator = Evaluator(extractor=PooledPixels(), cache=None)
    selection = select_best(result.paths.root, evaluator, EvalConfig(samples=12), trust_code=True)
    scores = {int(k): v for k, v in selection["scores"].items()}
    assert sorted(scores) == [2, 4, 6]
    best = (min if measure == "kid" else max)(scores, key=scores.get)
    assert selection == {"by": measure, "step": best, "scores": selection["scores"]}
    chosen = result.paths.adapters if best == 6 else result.paths.snapshot(best)
    assert result.paths.best_adapters.read_bytes() == chosen.read_bytes()
    assert json.loads(result.paths.summary.read_text())["selection"]["step"] == best
    assert json.loads(result.paths.summary.read_text())["steps"] == 6, "the run's own record is kept"


def test_no_snapshots_without_select_by_and_select_by_needs_validation(tmp_path):
    result = train(tiny_config(steps=4, checkpoint_every=2), tmp_path / "run")
    assert not result.paths.snapshots.exists()
    with pytest.raises(ga.ConfigError, match="select_by scores checkpoints on held-out images"):
        tiny_config(select_by="kid")
