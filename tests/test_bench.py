"""The benchmark script runs end to end (timings are its output, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_training_cli import env

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_adapters.py"


def test_bench_writes_a_row_per_variant_with_ratios_to_the_base(tmp_path):
    out = tmp_path / "bench.md"
    command = [sys.executable, str(BENCH), "--device", "cpu", "--resolution", "32", "--ch", "4", "--batch", "2",
               "--reps", "1", "--warmup", "1", "--precisions", "fp32", "--modes", "eager", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env())
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["base", "ssa", "apgc r2", "apgc r4", "apgc r8", "apc"]
    assert rows[0]["adapter_parameters"] == 0 and rows[1]["adapter_parameters"] == 2 * 16 * 6, (
        "ssa: 2C at 6 CBNs of 16"
    )
    table = out.read_text()
    assert "| base | eager | fp32 | 0 |" in table and "x base" in table
