"""The benchmark script runs end to end (timings are its output, never asserted here)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from test_training_cli import env


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
    result = subprocess.run(["bash", str(QUEUE), "4", str(tmp_path / "out"), "--dry-run"], capture_output=True,
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
    runs = {p: p.read_text() for p in previous.glob("cells/*/run.json")}
    second = _queue("3", tmp_path / "second", PREVIOUS=str(previous))
    assert "probe:" not in second.stdout and "4 of 4 cells trained at 4 steps" in second.stdout
    with tarfile.open(tmp_path / "second" / "cells.tar.gz") as tar:
        again = {n: tar.extractfile(n).read().decode() for n in tar.getnames() if n.endswith("run.json")}
    assert sorted(again.values()) == sorted(runs.values()), "the second window trained nothing again"
    score = subprocess.run([sys.executable, "bench/research_window.py", "--score", "--previous", str(previous),
                            "--template", str(tmp_path / "first" / "dry-recipe.toml")],
                           capture_output=True, text=True, timeout=600, env=env(), cwd=QUEUE.parents[1])  # fmt: skip
    assert score.returncode == 0, score.stderr[-3000:]
    rows = list(csv.DictReader((previous / "results.csv").open()))
    assert sorted(r["cell"] for r in rows) == sorted(
        Path(n).parent.name for n in names if n.endswith("run.json")
    )
    assert {r["steps"] for r in rows} == {"4"} and all(float(r["kid"]) == float(r["kid"]) for r in rows)
