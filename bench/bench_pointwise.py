"""Measure the path table: each way a point-wise adapter can run after a frozen BatchNorm, per shape.

For every (channels, resolution) of BigGAN-128's BN sites and every group size, it times one
training step of the layer pair (forward, backward into the adapter and the input) through six
paths: BN then the adapter with each grouped 1x1 implementation (`conv`, `bmm`, `dense`), and the
BN folded into the adapter with each (`folded-conv`, ...). The rows, keyed by this device's name,
replace the same device's rows of the same shapes in a copy of the package's table, written to
OUT/pointwise_paths.json;
copy that over gan_adapters/surgery/pointwise_paths.json to ship it. `fold="fast"` and
`pointwise_impl="auto"` then pick the fastest measured path on that device.

    python bench/bench_pointwise.py --out bench/results/pointwise-h100          # on a GPU, ~2 minutes
    python bench/bench_pointwise.py --device cpu --batch 2 --out bench/results/pointwise-cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from bench_adapters import timer
from torch import nn

from gan_adapters.surgery import GroupedPointwiseConv
from gan_adapters.surgery.hooks import eval_affine
from gan_adapters.surgery.paths import FOLDED, TABLE_FILE, device_name, path_name
from gan_adapters.surgery.pointwise import POINTWISE_IMPLEMENTATIONS

BIGGAN_128_SITES = [(1536, 4), (1536, 8), (768, 16), (384, 32), (192, 64), (96, 128)]
"""(channels, resolution) of BigGAN-128's (ch=96) BN sites, one per distinct shape."""


def layer_pair(
    channels: int, group_size: int, device: torch.device
) -> tuple[nn.BatchNorm2d, GroupedPointwiseConv]:
    """A frozen eval-mode BN with random statistics and an adapter with random (trained-like) blocks."""
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(channels).to(device).eval().requires_grad_(False)
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2)
    adapter = GroupedPointwiseConv(channels, group_size=group_size).to(device)
    with torch.no_grad():
        adapter.delta.normal_(std=0.1)
    return norm, adapter


def measure_paths(args, channels: int, resolution: int, group_size: int, dtype: str) -> dict[str, float]:
    """Median ms of one forward + backward through each of the six paths."""
    device = torch.device(args.device)
    norm, adapter = layer_pair(channels, group_size, device)
    x = torch.randn(args.batch, channels, resolution, resolution, device=device)
    x = x.to(memory_format=torch.channels_last).requires_grad_()
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    measure, times = timer(device), {}
    for folded in (False, True):
        for name, implementation in sorted(POINTWISE_IMPLEMENTATIONS.items()):

            def step(folded=folded, name=name, implementation=implementation):
                with torch.autocast(**autocast):
                    if folded:
                        y = adapter.after_affine(x, *eval_affine(norm), FOLDED + name)
                    else:
                        y = norm(x)
                        y = y + implementation(y, adapter.delta, adapter.bias, adapter.groups)
                y.float().square().mean().backward()

            for _ in range(args.warmup):
                step()
            times[path_name(name, folded)] = statistics.median(measure(step) for _ in range(args.reps))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--group-sizes", default="4,8,16")
    parser.add_argument(
        "--dtypes", default=None, help="default: bfloat16,float32 on a GPU, float32 on the CPU"
    )
    parser.add_argument("--sites", default=None, help="channels:resolution,... (default: BigGAN-128's)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dtypes = (args.dtypes or ("bfloat16,float32" if args.device == "cuda" else "float32")).split(",")
    sites = [tuple(map(int, s.split(":"))) for s in args.sites.split(",")] if args.sites else BIGGAN_128_SITES
    device = device_name(args.device)
    rows = []
    for dtype in dtypes:
        for channels, resolution in sites:
            for group_size in map(int, args.group_sizes.split(",")):
                ms = measure_paths(args, channels, resolution, group_size, dtype)
                pixels = args.batch * resolution**2
                rows.append(
                    dict(
                        device=device,
                        dtype=dtype,
                        channels=channels,
                        group_size=group_size,
                        pixels=pixels,
                        ms=ms,
                    )
                )
                print(json.dumps(rows[-1]), flush=True)

    def key(row: dict) -> tuple:
        return tuple(row[k] for k in ("device", "dtype", "channels", "group_size", "pixels"))

    kept = json.loads(TABLE_FILE.read_text())["rows"] if TABLE_FILE.is_file() else []
    kept = [r for r in kept if key(r) not in {key(new) for new in rows}]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pointwise_paths.json").write_text(json.dumps({"rows": kept + rows}, indent=1) + "\n")
    (args.out / "pointwise.md").write_text(markdown(device, args, rows))
    print(markdown(device, args, rows))


def markdown(device: str, args, rows: list[dict]) -> str:
    """The measured rows as a table: ms per path, the fastest in bold."""
    names = list(rows[0]["ms"])
    lines = [
        f"{device}; torch {torch.__version__}; batch {args.batch}, channels_last; forward + backward, "
        f"median of {args.reps}",
        "",
        "| dtype | C | px | g | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for r in rows:
        best = min(r["ms"], key=r["ms"].get)
        cells = [f"**{v:.3f}**" if k == best else f"{v:.3f}" for k, v in r["ms"].items()]
        lines.append(
            f"| {r['dtype']} | {r['channels']} | {r['pixels']} | {r['group_size']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
