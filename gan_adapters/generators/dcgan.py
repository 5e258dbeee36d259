"""The pretrained face DCGAN of `gan-face-generate` (64 px; weights inside its wheel)."""

from __future__ import annotations

import torch

from gan_adapters.errors import GeneratorError
from gan_adapters.generators.registry import GeneratorBundle, package_file, register_generator


@register_generator(
    "dcgan-faces",
    "DCGAN face generator of gan-face-generate (64 px, trained on DigiFace-1M; weights in its wheel)",
)
def dcgan_faces(random_weights: bool = False, **_) -> GeneratorBundle:
    """z (N, 100, 1, 1) ~ N(0, I) -> 64 px faces; 4 BatchNorm2d (512, 256, 128, 64)."""
    try:
        from gan_face_generate.models import Generator
    except ImportError as exc:
        raise GeneratorError(
            "dcgan-faces needs gan-face-generate: pip install --no-deps gan-face-generate==1.1.1 "
            "(its declared dependencies would pull torchvision and wandb, which it does not need)"
        ) from exc
    model = Generator(ngpu=0, nc=3, nz=100, ngf=64)
    if not random_weights:
        checkpoint = torch.load(
            package_file("gan_face_generate", "weights.tar"),
            map_location=torch.device("cpu"),
            weights_only=True,
        )
        model.load_state_dict(checkpoint["netG_state_dict"])
    return GeneratorBundle("dcgan-faces", model.eval(), (100, 1, 1), 64, 0, lambda z, labels: (z,))
