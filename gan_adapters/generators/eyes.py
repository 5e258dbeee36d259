"""The class-conditional DCGAN of `omniart-eye-generator` (128 px painted eyes; weights in its wheel).

Its package `__init__` runs a CUDA-tagged `torch.load` at import, so the package is never
imported: `generator.py` (which needs only torch) is loaded by file path, and the legacy
CUDA-tagged state dict is read with `map_location=torch.device("cpu")` and `weights_only=True`.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from gan_adapters.errors import GeneratorError
from gan_adapters.generators.registry import GeneratorBundle, package_file, register_generator

EYE_CLASSES = ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")
"""The eye colours it was trained on, in label order."""


def _generator_class() -> type[nn.Module]:
    path = package_file("omniart_eye_generator", "generator.py")
    if not path.is_file():
        raise GeneratorError(
            "eyes-cdcgan-128 needs omniart-eye-generator: pip install --no-deps omniart-eye-generator==0.1"
        )
    spec = importlib.util.spec_from_file_location("_omniart_eye_generator_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Generator


@register_generator(
    "eyes-cdcgan-128",
    "Class-conditional DCGAN of omniart-eye-generator (128 px painted eyes, 8 colours; weights in its wheel)",
)
def eyes_cdcgan_128(random_weights: bool = False, eye_class: str = "brown", **_) -> GeneratorBundle:
    """z (N, 100, 1, 1) and a one-hot eye colour (N, 8) -> 128 px eyes; 5 BatchNorm2d.

    Labels given to `forward_inputs` choose the colour per sample; without them every sample
    is `eye_class` (the colour the adapted domain starts from).
    """
    if eye_class not in EYE_CLASSES:
        raise GeneratorError(f"eye_class must be one of {', '.join(EYE_CLASSES)}, got {eye_class!r}")
    model = _generator_class()()
    if not random_weights:
        path = package_file("omniart_eye_generator", "generator_model_state.pth")
        model.load_state_dict(torch.load(path, map_location=torch.device("cpu"), weights_only=True))
    default = EYE_CLASSES.index(eye_class)

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        if labels is None:
            labels = torch.full((z.shape[0],), default, dtype=torch.long, device=z.device)
        return z, nn.functional.one_hot(labels, len(EYE_CLASSES)).to(z.dtype)

    return GeneratorBundle("eyes-cdcgan-128", model.eval(), (100, 1, 1), 128, len(EYE_CLASSES), inputs)
