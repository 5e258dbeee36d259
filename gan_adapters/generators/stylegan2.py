"""StyleGAN2 of lucidrains' `stylegan2-pytorch` (random weights; adapters via targets=Conv2DMod)."""

from __future__ import annotations

import importlib
import sys
import types
from unittest import mock

import torch

from gan_adapters.errors import GeneratorError
from gan_adapters.generators.registry import GeneratorBundle, register_generator


def import_lucidrains_stylegan2() -> types.ModuleType:
    """Import lucidrains' `stylegan2_pytorch` on a machine without a GPU or torchvision.

    Its module asserts a CUDA GPU at import and imports torchvision and aim for training
    utilities the generator never uses: the assertion is bypassed for the import only, and
    torchvision/aim get empty stand-ins when they are not installed.
    """
    name = "stylegan2_pytorch.stylegan2_pytorch"
    if name in sys.modules:
        return sys.modules[name]
    stand_ins = {}
    for missing in ("torchvision", "torchvision.transforms", "aim"):
        try:
            importlib.import_module(missing)
        except ImportError:
            stand_ins[missing] = sys.modules[missing] = types.ModuleType(missing)
    if not hasattr(sys.modules["torchvision"], "transforms"):
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    try:
        with mock.patch.object(torch.cuda, "is_available", lambda: True):
            return importlib.import_module(name)
    except ImportError as exc:
        raise GeneratorError(
            f"stylegan2-lucidrains needs stylegan2-pytorch: pip install --no-deps stylegan2-pytorch==1.9.0 "
            f"fire einops kornia vector-quantize-pytorch==0.1.0 ({exc})"
        ) from exc
    finally:
        # The stand-ins would fool other packages (accelerate probes for aim) into using them.
        for stand_in in stand_ins:
            sys.modules.pop(stand_in, None)


@register_generator(
    "stylegan2-lucidrains",
    "StyleGAN2 of lucidrains' stylegan2-pytorch (random weights; adapters via targets=Conv2DMod)",
)
def stylegan2_lucidrains(
    image_size: int = 32, latent_dim: int = 64, network_capacity: int = 4, **_
) -> GeneratorBundle:
    """The per-layer style w (N, layers, latent_dim) is the latent; noise is fixed to zero."""
    module = import_lucidrains_stylegan2()
    model = module.Generator(image_size=image_size, latent_dim=latent_dim, network_capacity=network_capacity)

    def inputs(w: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        noise = torch.zeros(w.shape[0], image_size, image_size, 1, device=w.device, dtype=w.dtype)
        return w, noise

    return GeneratorBundle(
        "stylegan2-lucidrains", model.eval(), (model.num_layers, latent_dim), image_size, 0, inputs
    )
