"""The benchmark script runs end to end (timings are its output, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
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
    result = subprocess.run(["bash", str(QUEUE), "3", str(tmp_path / "out"), "--dry-run"], capture_output=True,
                            text=True, timeout=120, env=env() | {"PYTHON": sys.executable}, cwd=QUEUE.parents[1])  # fmt: skip
    assert result.returncode == 2 and "not prepared yet" in result.stdout
