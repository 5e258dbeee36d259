"""What do injected adapters cost? Training-step and sampling time, and peak memory, against
the frozen base, for every kind and size, eager and compiled, fp32 and bf16, channels_last.

The generator is the project's BigGAN at 128 px, ch=96 (BigGAN-128's shape, random weights).
A training step is the fine-tuning step: forward, L1 loss, backward into the adapters and the
per-image latents with the base frozen. Every figure is also given as a ratio to the base
measured in the same run; times are medians after warm-up (CUDA events on a GPU).

    python bench/bench_adapters.py                       # on a GPU: the full table (minutes)
    python bench/bench_adapters.py --device cpu --resolution 32 --ch 4 --batch 4 --reps 3 \\
        --precisions fp32 --modes eager --out bench/results-cpu-smoke.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import gan_adapters as ga
from gan_adapters.generators.biggan import BigGANConfig, BigGANGenerator

VARIANTS = {
    "base": None,
    "ssa": dict(kind="ssa"),
    "apgc r2": dict(kind="apgc", ratio=2),
    "apgc r4": dict(kind="apgc", ratio=4),
    "apgc r8": dict(kind="apgc", ratio=8),
    "apc": dict(kind="apc"),
    "ssa unfolded": dict(kind="ssa", fold="never"),
    "apgc r4 folded": dict(kind="apgc", ratio=4, fold="always"),
}
"""The folded/unfolded variants differ only where the sites are torch BatchNorms in eval mode:
`--targets BatchNorm2d` (the affine-free norm inside each class-conditional BN)."""


def build(args, variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = BigGANConfig(resolution=args.resolution, ch=args.ch, z_dim=args.z_dim, num_classes=args.classes)
    model = BigGANGenerator(config).to(args.device).eval()
    if VARIANTS[variant] is not None:
        model = ga.inject(model, targets=[args.targets], **VARIANTS[variant])
    else:
        model.requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def timer(device: torch.device):
    if device.type == "cuda":

        def measure(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)

        return measure

    def measure(fn):
        began = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - began)

    return measure


def run_variant(args, variant: str, mode: str, precision: str) -> dict:
    device = torch.device(args.device)
    model = build(args, variant)
    if mode == "compiled":
        import torch._dynamo as dynamo

        dynamo.reset()  # each variant its own graphs: shared, they use up the recompile limit and go eager
    forward = torch.compile(model) if mode == "compiled" else model
    latents = torch.zeros(args.batch, args.z_dim, device=device, requires_grad=True)
    labels = torch.zeros(args.batch, dtype=torch.long, device=device)
    target = torch.rand(args.batch, 3, args.resolution, args.resolution, device=device) * 2 - 1
    target = target.to(memory_format=torch.channels_last)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step():
        with torch.autocast(**autocast):
            loss = F.l1_loss(forward(latents, labels).float(), target)
        loss.backward()

    def sample():
        with torch.no_grad(), torch.autocast(**autocast):
            forward(torch.randn(args.batch, args.z_dim, device=device), labels)

    measure = timer(device)
    for _ in range(args.warmup):
        step()
        sample()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    step_ms = statistics.median(measure(step) for _ in range(args.reps))
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    sample_ms = statistics.median(measure(sample) for _ in range(args.reps))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "variant": variant,
        "mode": mode,
        "precision": precision,
        "step_ms": step_ms,
        "sample_ms": sample_ms,
        "peak_mib": peak,
        "adapter_parameters": trainable,
    }


def table(rows: list[dict]) -> str:
    base = {(r["mode"], r["precision"]): r for r in rows if r["variant"] == "base"}
    lines = [
        "| variant | mode | precision | adapter params | step ms | x base | sample ms | x base "
        "| peak MiB | x base |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = base[(r["mode"], r["precision"])]
        lines.append(
            f"| {r['variant']} | {r['mode']} | {r['precision']} | {r['adapter_parameters']:,} "
            f"| {r['step_ms']:.2f} | {r['step_ms'] / b['step_ms']:.3f} "
            f"| {r['sample_ms']:.2f} | {r['sample_ms'] / b['sample_ms']:.3f} | "
            f"{r['peak_mib']:.0f} | {r['peak_mib'] / b['peak_mib']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--ch", type=int, default=96)
    parser.add_argument("--z-dim", type=int, default=120)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--targets", default="ConditionalBatchNorm2d", help="or BatchNorm2d, where folding applies"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results.md"))
    parser.add_argument(
        "--seconds", type=float, default=float("inf"), help="stop before a row that would end past this"
    )
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    planned = [
        (mode, precision, variant)
        for mode in args.modes.split(",")
        for precision in args.precisions.split(",")
        for variant in ["base", *[v for v in args.variants.split(",") if v != "base"]]
    ]
    began, longest, rows = time.monotonic(), 0.0, []
    for mode, precision, variant in planned:
        if rows and time.monotonic() - began + 1.5 * longest > args.seconds:  # the base row always
            print(f"stopped before the deadline ({args.seconds:.0f} s): {len(rows)} of {len(planned)} rows")
            break
        started = time.monotonic()
        rows.append(run_variant(args, variant, mode, precision))
        longest = max(longest, time.monotonic() - started)
        print(json.dumps(rows[-1]), flush=True)
        write(args, rows, len(planned))  # every row as it is measured: a window cut short keeps them
    if rows:
        print(args.out.read_text())


def write(args, rows: list[dict], planned: int) -> None:
    """The table so far, as markdown (OUT) and JSON beside it."""
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    header = (
        f"BigGAN {args.resolution} px, ch={args.ch}, batch {args.batch}, channels_last, adapters after "
        f"{args.targets}; {device}; torch {torch.__version__}; TF32 {args.device == 'cuda'}; "
        f"medians of {args.reps} after {args.warmup} warm-up; {len(rows)} of {planned} rows"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"{header}\n\n{table(rows)}\n")
    args.out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
