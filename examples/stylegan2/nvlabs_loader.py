"""Load an NVlabs stylegan2-ada-pytorch (or stylegan3) generator pickle from your clone.

NVlabs' code is not on PyPI and its pickles hold classes of that code: clone
github.com/NVlabs/stylegan2-ada-pytorch, and load only pickles you trust (a pickle runs code).
Its ops compile lazily and fall back to reference implementations on the CPU.

Sites: the synthesis network's `SynthesisLayer` modules (two per resolution; each is a
modulated 3x3 conv + noise + bias + activation); their outputs get the adapters. `ToRGBLayer`s
are left alone.

    export PYTHONPATH=examples/stylegan2
    gan-adapters finetune my-images/ --model nvlabs_loader:load_stylegan2_ada \\
        --target SynthesisLayer --kind apgc --ratio 2
    # recipe: model_options = { repo = "/path/to/stylegan2-ada-pytorch", pickle_path = "ffhq.pkl" }
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from gan_adapters.errors import GanAdaptersError
from gan_adapters.generators.registry import GeneratorBundle


class _Synthesis(nn.Module):
    """G_ema as z -> image with fixed truncation and constant noise (deterministic)."""

    def __init__(self, generator: nn.Module, truncation: float) -> None:
        super().__init__()
        self.generator = generator
        self.truncation = truncation

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator(z, c, truncation_psi=self.truncation, noise_mode="const")


def load_stylegan2_ada(
    repo: str | None = None, pickle_path: str | None = None, truncation: float = 1.0
) -> GeneratorBundle:
    """The `G_ema` of a network pickle as a bundle: z (z_dim) [+ class] -> image in [-1, 1]."""
    repo = repo or os.environ.get("STYLEGAN2_ADA_REPO")
    if not repo or not (Path(repo) / "dnnlib").is_dir():
        raise GanAdaptersError(
            "point repo= (or STYLEGAN2_ADA_REPO) at a clone of NVlabs/stylegan2-ada-pytorch"
        )
    if pickle_path is None or not Path(pickle_path).is_file():
        raise GanAdaptersError(f"no network pickle at {pickle_path}")
    sys.path.insert(0, str(Path(repo).resolve()))
    with open(pickle_path, "rb") as handle:
        generator = pickle.load(handle)["G_ema"].float().eval()
    model = _Synthesis(generator, truncation)

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        if generator.c_dim == 0:
            return z, torch.zeros(z.shape[0], 0, device=z.device)
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, nn.functional.one_hot(labels, generator.c_dim).float()

    return GeneratorBundle(
        "stylegan2-ada", model, (generator.z_dim,), generator.img_resolution, generator.c_dim, inputs
    )
