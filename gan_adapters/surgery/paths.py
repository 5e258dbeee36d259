"""How a point-wise adapter runs: which grouped 1x1 implementation, and whether a frozen BatchNorm
before it is folded in, chosen from a table of timings measured per device, dtype and shape.

`bench/bench_pointwise.py` measures the table's rows on the machine it runs on and merges them
into `pointwise_paths.json`; a device with no rows runs the plain path (`conv`, not folded).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

TABLE_FILE = Path(__file__).with_name("pointwise_paths.json")
DEFAULT_IMPLEMENTATION = "conv"
FOLDED = "folded-"
"""Prefix of a path name that folds the norm in: `folded-conv` is BN folded into one grouped conv."""
FOLD_POLICIES = ("exact", "fast", "always", "never")
"""What `AdapterConfig.fold` may say. For a point-wise adapter after a frozen BatchNorm: `fast`
lets the table choose folded or not, `always` folds, `exact` and `never` do not."""


@dataclass(frozen=True, eq=False)  # hashed by identity: rows come from one cached read
class PathTiming:
    """One measured shape on one device: milliseconds per path name (`conv`, `folded-bmm`, ...)."""

    device: str
    dtype: str
    channels: int
    group_size: int
    pixels: int
    ms: dict[str, float]

    def distance(self, channels: int, group_size: int, pixels: int) -> float:
        """How far another shape is from this one, in octaves of each dimension (pixels 0: unknown,
        left out)."""
        pairs = [(self.channels, channels), (self.group_size, group_size)] + (
            [(self.pixels, pixels)] if pixels else []
        )
        return sum(abs(math.log2(a) - math.log2(b)) for a, b in pairs)


def path_name(implementation: str, folded: bool) -> str:
    """The table's name for an implementation, folded or not."""
    return f"{FOLDED}{implementation}" if folded else implementation


@functools.cache
def read_table(path: Path = TABLE_FILE) -> tuple[PathTiming, ...]:
    """The rows of a path table file (none when it does not exist)."""
    if not path.is_file():
        return ()
    return tuple(PathTiming(**row) for row in json.loads(path.read_text())["rows"])


@functools.cache
def device_name(device: str) -> str:
    """The name a table row carries: the GPU's model, or the CPU's."""
    parsed = torch.device(device)
    if parsed.type == "cuda":
        return torch.cuda.get_device_name(parsed)
    if parsed.type == "cpu":
        cpuinfo = Path("/proc/cpuinfo")
        lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        return f"cpu: {names[0] if names else 'unknown'}"
    return parsed.type


def candidates(implementation: str, fold: str) -> list[str]:
    """The path names allowed by `implementation` ('auto' or one name) and a fold policy."""
    implementations = sorted(POINTWISE_IMPLEMENTATIONS) if implementation == "auto" else [implementation]
    folds = {"fast": [False, True], "always": [True]}.get(fold, [False])
    return [path_name(name, folded) for folded in folds for name in implementations]


@functools.lru_cache(maxsize=4096)
def _choose(
    device: str,
    dtype: str,
    channels: int,
    group_size: int,
    pixels: int,
    implementation: str,
    fold: str,
    table: tuple[PathTiming, ...],
) -> str:
    allowed = candidates(implementation, fold)
    if len(allowed) == 1:
        return allowed[0]
    rows = [
        r for r in table if r.device == device_name(device) and r.dtype == dtype and set(allowed) & set(r.ms)
    ]
    if not rows:
        defaults = [path_name(DEFAULT_IMPLEMENTATION, folded) for folded in (False, True)]
        return next((name for name in defaults if name in allowed), allowed[0])
    nearest = min(rows, key=lambda r: r.distance(channels, group_size, pixels))
    return min((name for name in allowed if name in nearest.ms), key=nearest.ms.__getitem__)


def choose_path(
    device: str,
    dtype: torch.dtype,
    channels: int,
    group_size: int,
    pixels: int,
    implementation: str,
    fold: str,
) -> str:
    """The fastest allowed path for this call (a constant to torch.compile: no graph break).

    `pixels` is the input's elements per channel (N * H * W; 0 when unknown, as under torch.compile);
    `implementation` and `fold` as in
    `candidates`. Rows of the same device and dtype are searched for the nearest shape.
    """
    dtype_name = str(dtype).removeprefix("torch.")
    return _choose(device, dtype_name, channels, group_size, pixels, implementation, fold, read_table())


# What torch.compiler.assume_constant_result(choose_path) does, without importing torch._dynamo
# (1-2 s) into every process that imports the surgery; tests/test_pointwise.py checks both agree.
choose_path._dynamo_marked_constant = True
