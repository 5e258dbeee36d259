"""The benchmark script runs end to end (timings are its output, never asserted here)."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from xml.etree import ElementTree

import torch
from safetensors.torch import save_file
from test_sweep import PooledPixels
from test_training import adapter_file_tensors
from test_training_cli import env

from gan_adapters.evaluation.evaluator import Evaluator


def test_gpu_queue_items_3_to_5_write_the_path_table_and_the_benchmarks(tmp_path):
    for item in "345":
        _queue(item, tmp_path / item)
    rows = json.loads((tmp_path / "4" / "bench.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["base", "ssa", "apgc r2", "apgc r4", "apgc r8", "apc"]
    assert rows[0]["adapter_parameters"] == 0 and rows[1]["adapter_parameters"] == 2 * 16 * 6, (
        "ssa: 2C at 6 CBNs of 16"
    )
    table = (tmp_path / "4" / "bench.md").read_text()
    assert "| base | eager | fp32 | 0 |" in table and "x base" in table and "6 of 6 rows" in table
    folds = json.loads((tmp_path / "5" / "bench-folds.json").read_text())["rows"]
    assert [r["variant"] for r in folds] == ["base", "ssa", "ssa unfolded", "apgc r4", "apgc r4 folded"]
    assert folds[1]["adapter_parameters"] == folds[2]["adapter_parameters"] == 2 * 16 * 7, (
        "the 6 CBNs' inner BNs and the output BN"
    )
    table = json.loads((tmp_path / "3" / "pointwise_paths.json").read_text())["rows"]
    measured = [r for r in table if r["device"].startswith("cpu") and r["channels"] == 16]
    assert len(measured) == 1 and sorted(measured[0]["ms"]) == sorted(
        ["conv", "bmm", "dense", "folded-conv", "folded-bmm", "folded-dense"]
    )
    assert len(table) > 1, "the package's rows of other shapes and devices are kept"


def test_gpu_queue_item_2_reports_the_cuda_tests_and_fails_when_they_fail(tmp_path):
    result = _queue("2", tmp_path / "out")
    report = ElementTree.parse(tmp_path / "out" / "pytest.xml").getroot().find("testsuite")
    assert int(report.get("tests")) > 50 and report.get("skipped") == report.get("tests"), "no GPU here"
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "travels: tree" in log and "pytest exit status 0" in log and "comes back: 2 files" in result.stdout
    failing = subprocess.run(
        ["bash", str(QUEUE), "2", str(tmp_path / "failing"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=QUEUE.parents[1],
        env=env() | {"PYTHON": sys.executable, "PYTEST_ADDOPTS": "--no-such-option"},
    )
    assert failing.returncode == 4 and "pytest exit status 4" in failing.stdout, (
        "pytest's failure is the item's"
    )


def test_the_adapter_benchmark_stops_before_its_deadline_with_the_rows_it_measured(tmp_path):
    out = tmp_path / "bench.md"
    command = [
        sys.executable,
        str(QUEUE.parent / "bench_adapters.py"),
        "--device",
        "cpu",
        "--resolution",
        "32",
        "--ch",
        "4",
        "--batch",
        "2",
        "--reps",
        "1",
        "--warmup",
        "1",
        "--precisions",
        "fp32",
        "--modes",
        "eager",
        "--out",
        str(out),
        "--seconds",
        "0",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env(), cwd=QUEUE.parents[1]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stopped before the deadline (0 s): 1 of 8 rows" in result.stdout
    assert [r["variant"] for r in json.loads(out.with_suffix(".json").read_text())["rows"]] == ["base"]


def test_window_check_says_what_would_not_come_back_or_travel(tmp_path):
    sys.path.insert(0, str(QUEUE.parent))
    from window_check import TRAVEL_BYTES, problems_coming_back, travelling

    out = tmp_path / "out"
    (out / "a" / "b" / "c").mkdir(parents=True)
    (out / "fine.txt").write_text("x")
    assert problems_coming_back(out) == []
    (out / "a" / "b" / "c" / "deep.txt").write_text("x")
    (out / "odd name.txt").write_text("x")
    with open(out / "big.bin", "wb") as handle:
        handle.truncate(17 * 2**20)  # sparse: no disk used
    found = problems_coming_back(out)
    assert any("deep.txt: 3 folders down" in f for f in found) and any("odd name.txt" in f for f in found)
    assert any("big.bin: 17.0 MiB" in f for f in found) and not any("files (at most" in f for f in found)
    for i in range(6):
        (out / f"more-{i}.txt").write_text("x")
    assert any("10 files (at most 8 come back)" in f for f in problems_coming_back(out))
    tree, carry = travelling(QUEUE.parents[1], [out / "big.bin"])
    assert carry == 17 * 2**20 and tree + carry < TRAVEL_BYTES
    with open(out / "big.bin", "wb") as handle:
        handle.truncate(TRAVEL_BYTES)
    command = [sys.executable, str(QUEUE.parent / "window_check.py"), "carry", str(out / "big.bin")]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=QUEUE.parents[1])
    assert refused.returncode == 1 and "of 64" in refused.stdout, "the tree and the carry: over 64 MiB"


QUEUE = Path(__file__).resolve().parents[1] / "bench" / "gpu_queue.sh"


def dry_run_queue(item: str, out: Path, timeout: int) -> subprocess.CompletedProcess:
    """`bench/gpu_queue.sh ITEM OUT --dry-run`, as a GPU window would run it, on the CPU."""
    command = ["bash", str(QUEUE), item, str(out), "--dry-run"]
    environment = env() | {"PYTHON": sys.executable}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=QUEUE.parents[1]
    )


def test_gpu_queue_dry_run_of_the_pretraining_item_brings_back_what_the_next_window_needs(tmp_path):
    result = dry_run_queue("1", tmp_path / "out", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["card.json", "generator-ema.safetensors", "log.txt", "weights-0.safetensors"]
    assert json.loads((tmp_path / "out" / "card.json").read_text())["steps"] == 6
    assert all(p.stat().st_size < 16 * 2**20 for p in (tmp_path / "out").iterdir()), "each file can come back"


def test_gpu_queue_refuses_an_item_not_prepared(tmp_path):
    result = dry_run_queue("8", tmp_path / "out", timeout=120)
    assert result.returncode == 2 and "not prepared yet" in result.stdout


def _queue(item: str, out: Path, **env_extra) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(QUEUE), item, str(out), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env() | {"PYTHON": sys.executable} | env_extra,
        cwd=QUEUE.parents[1],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_research_windows_size_the_steps_once_go_on_from_each_other_and_are_scored_here(tmp_path):
    first = _queue("6", tmp_path / "first")
    assert "probe:" in first.stdout and "4 of 4 cells trained at 4 steps, 4 in this window" in first.stdout
    previous = tmp_path / "results"
    previous.mkdir()
    with tarfile.open(tmp_path / "first" / "cells-1.tar.gz") as tar:
        names = tar.getnames()
        tar.extractall(previous, filter="data")
    assert len(names) == 4 * 4 and not [n for n in names if "checkpoint" in n], (
        "kilobytes a cell, no checkpoints"
    )
    halves = [adapter_file_tensors(p) for p in previous.glob("cells/*/adapters.safetensors")]
    assert len(halves) == 4 and {v.dtype for h in halves for v in h.values()} == {torch.float16}
    (previous / "steps.txt").write_text((tmp_path / "first" / "steps.txt").read_text())
    # The next window and the scoring, in this process (the bash wrapper was tested above).
    sys.path.insert(0, str(QUEUE.parent))
    import research_window

    template = tmp_path / "first" / "dry-recipe.toml"
    window = argparse.Namespace(
        template=template,
        previous=previous,
        out=tmp_path / "second",
        seconds=300.0,
        probe_steps=2,
        step_choices=(4, 2),
    )
    research_window.window(window)
    assert sorted(p.name for p in (tmp_path / "second").iterdir()) == ["steps.txt"], (
        "every cell came from the first window: nothing trained or packed again, no probe"
    )
    research_window.score(
        argparse.Namespace(template=template, previous=previous), Evaluator(PooledPixels(), cache=None)
    )
    rows = list(csv.DictReader((previous / "results.csv").open()))
    assert sorted(r["cell"] for r in rows) == sorted(
        Path(n).parent.name for n in names if n.endswith("run.json")
    )
    assert {r["steps"] for r in rows} == {"4"} and all(float(r["kid"]) == float(r["kid"]) for r in rows)


def test_packed_cells_split_into_parts_under_the_limit(tmp_path):
    sys.path.insert(0, str(QUEUE.parent))
    from research_window import PACKED, pack

    for name in ("a", "b", "c"):
        (tmp_path / "cells" / name).mkdir(parents=True)
        save_file(
            {"delta": torch.randn(64, 64), "steps": torch.arange(3)}, tmp_path / "cells" / name / PACKED[0]
        )
        for file_name in PACKED[1:]:
            (tmp_path / "cells" / name / file_name).write_text(name)
    parts = pack(tmp_path / "cells", ["a", "b", "c"], tmp_path, part_bytes=2 * 64 * 64 * 2 + 2000)
    assert [p.name for p in parts] == ["cells-1.tar.gz", "cells-2.tar.gz"], "two fp16 cells a part"
    with tarfile.open(parts[1]) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    back = adapter_file_tensors(tmp_path / "back" / "cells" / "c" / PACKED[0])
    original = adapter_file_tensors(tmp_path / "cells" / "c" / PACKED[0])
    assert back["delta"].dtype == torch.float16 and torch.equal(back["delta"], original["delta"].half())
    assert torch.equal(back["steps"], original["steps"]), "integer tensors stay as they are"


def test_time_to_adapt_stops_the_real_cli_at_its_slice_and_projects_the_schedule(tmp_path):
    _queue("7", tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "eager-log.txt",
        "eager-metrics.csv",
        "log.txt",
        "time-to-adapt.json",
        "time-to-adapt.md",
    ], "flat and few: what a GPU window can bring back"
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
    assert choose_steps(0.02, 10.0, 480.0, cells=10) == 1000, "start-up counts: 10 x (10 s + 40 s) > 480 s"
    assert choose_steps(0.002, 3.0, 480.0, cells=10) == 10_000
    assert choose_steps(1.0, 3.0, 480.0, cells=10) == 500, "nothing fits: the fewest steps"
