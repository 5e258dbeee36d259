"""The benchmark script runs end to end (timings are its output, never asserted here)."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from test_sweep import PooledPixels
from test_training_cli import env

from gan_adapters.evaluation.evaluator import Evaluator


def test_gpu_queue_item_2_runs_the_cuda_suite_and_the_benchmark(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(QUEUE), "2", str(out), "--dry-run"], capture_output=True, text=True,
                            timeout=600, env=env() | {"PYTHON": sys.executable}, cwd=QUEUE.parents[1])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "skipped" in (out / "pytest.txt").read_text(), "no GPU here: the CUDA tests say why they skip"
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["base", "ssa", "apgc r2", "apgc r4", "apgc r8", "apc"]
    assert rows[0]["adapter_parameters"] == 0 and rows[1]["adapter_parameters"] == 2 * 16 * 6, (
        "ssa: 2C at 6 CBNs of 16"
    )
    table = (out / "bench.md").read_text()
    assert "| base | eager | fp32 | 0 |" in table and "x base" in table
    folds = json.loads((out / "bench-folds.json").read_text())["rows"]
    assert [r["variant"] for r in folds] == ["base", "ssa", "ssa unfolded", "apgc r4", "apgc r4 folded"]
    assert folds[1]["adapter_parameters"] == folds[2]["adapter_parameters"] == 2 * 16 * 7, (
        "the 6 CBNs' inner BNs and the output BN"
    )
    table = json.loads((out / "pointwise_paths.json").read_text())["rows"]
    measured = [r for r in table if r["device"].startswith("cpu") and r["channels"] == 16]
    assert len(measured) == 1 and sorted(measured[0]["ms"]) == sorted(
        ["conv", "bmm", "dense", "folded-conv", "folded-bmm", "folded-dense"]
    )
    assert len(table) > 1, "the package's rows of other shapes and devices are kept"


QUEUE = Path(__file__).resolve().parents[1] / "bench" / "gpu_queue.sh"


def test_gpu_queue_dry_run_of_the_pretraining_item_brings_back_what_the_next_window_needs(tmp_path):
    result = subprocess.run(["bash", str(QUEUE), "1", str(tmp_path / "out"), "--dry-run"], capture_output=True,
                            text=True, timeout=600, env=env() | {"PYTHON": sys.executable}, cwd=QUEUE.parents[1])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["card.json", "generator-ema.safetensors", "log.txt", "weights-0.safetensors"]
    assert json.loads((tmp_path / "out" / "card.json").read_text())["steps"] == 6
    assert all(p.stat().st_size < 16 * 2**20 for p in (tmp_path / "out").iterdir()), "each file can come back"


def test_gpu_queue_refuses_an_item_not_prepared(tmp_path):
    result = subprocess.run(["bash", str(QUEUE), "5", str(tmp_path / "out"), "--dry-run"], capture_output=True,
                            text=True, timeout=120, env=env() | {"PYTHON": sys.executable}, cwd=QUEUE.parents[1])  # fmt: skip
    assert result.returncode == 2 and "not prepared yet" in result.stdout


def _queue(item: str, out: Path, **env_extra) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(QUEUE), item, str(out), "--dry-run"], capture_output=True, text=True,
                            timeout=600, env=env() | {"PYTHON": sys.executable} | env_extra, cwd=QUEUE.parents[1])  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_research_windows_size_the_steps_once_go_on_from_each_other_and_are_scored_here(tmp_path):
    first = _queue("3", tmp_path / "first")
    assert "probe:" in first.stdout and "4 of 4 cells trained at 4 steps" in first.stdout
    previous = tmp_path / "results"
    previous.mkdir()
    with tarfile.open(tmp_path / "first" / "cells.tar.gz") as tar:
        names = tar.getnames()
        tar.extractall(previous, filter="data")
    assert len(names) == 4 * 4 and not [n for n in names if "checkpoint" in n], (
        "kilobytes a cell, no checkpoints"
    )
    (previous / "steps.txt").write_text((tmp_path / "first" / "steps.txt").read_text())
    runs = sorted(p.read_text() for p in previous.glob("cells/*/run.json"))
    # The next window and the scoring, in this process (the bash wrapper was tested above).
    sys.path.insert(0, str(QUEUE.parent))
    import research_window

    template = tmp_path / "first" / "dry-recipe.toml"
    window = argparse.Namespace(template=template, previous=previous, out=tmp_path / "second", seconds=300.0,
                                probe_steps=2, step_choices=(4, 2))  # fmt: skip
    research_window.window(window)
    with tarfile.open(tmp_path / "second" / "cells.tar.gz") as tar:
        again = sorted(tar.extractfile(n).read().decode() for n in tar.getnames() if n.endswith("run.json"))
    assert again == runs, "the second window trained nothing again (no probe either: steps.txt came back)"
    assert not (tmp_path / "second" / "probe").exists()
    research_window.score(
        argparse.Namespace(template=template, previous=previous), Evaluator(PooledPixels(), cache=None)
    )
    rows = list(csv.DictReader((previous / "results.csv").open()))
    assert sorted(r["cell"] for r in rows) == sorted(
        Path(n).parent.name for n in names if n.endswith("run.json")
    )
    assert {r["steps"] for r in rows} == {"4"} and all(float(r["kid"]) == float(r["kid"]) for r in rows)


def test_time_to_adapt_stops_the_real_cli_at_its_slice_and_projects_the_schedule(tmp_path):
    _queue("4", tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "eager-log.txt", "eager-metrics.csv", "log.txt", "time-to-adapt.json", "time-to-adapt.md",
    ], "flat and few: what a GPU window can bring back"  # fmt: skip
    (row,) = json.loads((out / "time-to-adapt.json").read_text())
    metrics = list(csv.DictReader((out / "eager-metrics.csv").open()))
    assert row["mode"] == "eager" and row["steps_run"] == len(metrics)
    assert 21 < row["steps_run"] < 10_000, "stopped by its time slice, after the warm-up steps"
    projected = (row["startup_s"] + 10_000 * row["ms_per_step"] / 1000) / 60
    assert abs(row["projected_10k_min"] - projected) < 1e-9
    assert abs(row["images_per_s"] * row["ms_per_step"] / 1000 - 4) < 1e-9, "batch 4 images a step"


def test_a_window_sizes_the_steps_so_one_domains_seed_0_fits():
    sys.path.insert(0, str(QUEUE.parent))
    from research_window import choose_steps

    assert choose_steps(0.02, 3.0, 480.0, cells=10) == 2000, "10 x (3 s + 2000 x 20 ms) = 430 s <= 480 s"
    assert choose_steps(0.002, 3.0, 480.0, cells=10) == 10_000
    assert choose_steps(1.0, 3.0, 480.0, cells=10) == 500, "nothing fits: the fewest steps"
