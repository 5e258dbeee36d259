"""Which kernels does torch.compile (inductor) make of a norm, its adapter and the ReLU after it?

For each kind and fold policy it compiles BatchNorm -> adapter -> ReLU and lists the generated
fused kernels (their names say which ops they hold) and the library calls (convolutions):

    python bench/inspect_fusion.py                   # CPU: C++ kernels; on a GPU: Triton kernels
"""

from __future__ import annotations

import argparse
import re

import torch
from torch._inductor.utils import run_and_get_code

import gan_adapters as ga

CASES = {"ssa": dict(kind="ssa"), "apgc g8": dict(kind="apgc", group_size=8)}


def kernels(options: dict, fold: str, device: str, channels: int = 32) -> tuple[list[str], list[str]]:
    """(fused kernel names, library calls) inductor generates for norm -> adapter -> ReLU."""
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.BatchNorm2d(channels), torch.nn.ReLU()).to(device).eval()
    block = ga.inject(block, fold=fold, **options)
    x = torch.randn(4, channels, 8, 8, device=device).to(memory_format=torch.channels_last)
    with torch.no_grad():
        _, code = run_and_get_code(torch.compile(block), x)
    text = "\n".join(code)
    fused = sorted(set(re.findall(r"\b(?:cpp|triton)_\w*?fused_\w+", text)))
    calls = sorted(set(re.findall(r"extern_kernels\.(\w+)", text)))
    return fused, calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {args.device}\n\n"
        "| adapter | fold | fused kernels | library calls |\n|---|---|---|---|"
    )
    for label, options in CASES.items():
        for fold in ("never", "always"):
            fused, calls = kernels(options, fold, args.device)
            print(f"| {label} | {fold} | {', '.join(fused)} | {', '.join(calls) or '-'} |")


if __name__ == "__main__":
    main()
