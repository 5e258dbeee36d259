"""Load a generator of ajbrock/BigGAN-PyTorch from your clone and its G_ema.pth.

BigGAN-PyTorch is not on PyPI: clone it (github.com/ajbrock/BigGAN-PyTorch), download a
pretrained generator (its README links the 128 px ImageNet model: G_ch 96, hierarchical z of
120 dims, shared class embedding of 128), then point this loader at both. Its `ccbn(x, y)`
layers (10 at 128 px) and the output `bn` are found as sites by class name; fx fails on its
top-level forward (a Python loop over torch.split chunks), so sites are read submodule by
submodule (or by torch.export when you pass example inputs), and the condition y reaches
conditional adapters.

    export PYTHONPATH=examples/biggan
    gan-adapters finetune my-images/ --model ajbrock_loader:load_biggan_pytorch --kind apgc --ratio 4
    # with model_options in a recipe: repo = "/path/to/BigGAN-PyTorch", weights = "/path/to/G_ema.pth"
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch

from gan_adapters.errors import GanAdaptersError
from gan_adapters.files import read_weights
from gan_adapters.generators.registry import GeneratorBundle


def load_biggan_pytorch(
    repo: str | None = None,
    weights: str | None = None,
    resolution: int = 128,
    G_ch: int = 96,  # noqa: N803 - BigGAN-PyTorch's own argument names
    dim_z: int = 120,
    shared_dim: int = 128,
    hier: bool = True,
    G_attn: str = "64",  # noqa: N803
    n_classes: int = 1000,
) -> GeneratorBundle:
    """A BigGAN-PyTorch `Generator` as a bundle: z (dim_z) and a class -> G(z, G.shared(class))."""
    repo = repo or os.environ.get("BIGGAN_PYTORCH_REPO")
    if not repo or not (Path(repo) / "BigGAN.py").is_file():
        raise GanAdaptersError(
            "point repo= (or BIGGAN_PYTORCH_REPO) at a clone of github.com/ajbrock/BigGAN-PyTorch "
            "(it has BigGAN.py)"
        )
    sys.path.insert(0, str(Path(repo).resolve()))
    try:
        biggan = importlib.import_module("BigGAN")
    finally:
        sys.path.pop(0)
    generator = biggan.Generator(
        G_ch=G_ch,
        dim_z=dim_z,
        resolution=resolution,
        G_attn=G_attn,
        n_classes=n_classes,
        shared_dim=shared_dim,
        hier=hier,
        G_shared=True,
        skip_init=True,
        no_optim=True,
    )
    if weights is not None:
        generator.load_state_dict(read_weights(weights))

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, generator.shared(labels)

    return GeneratorBundle(
        "biggan-pytorch", generator.eval(), (dim_z,), resolution, n_classes, inputs, "shared"
    )
