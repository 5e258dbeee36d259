"""Generators by name: a small registry of pretrained (or random) generators and how to feed them.

`load_generator("dcgan-faces")` gives a `GeneratorBundle`: the module plus the shape of its
latent and a function that turns latents (and class labels) into its forward arguments,
so the CLI and the trainer can drive any of them the same way. User code plugs in as
`"package.module:factory"` with an optional checkpoint.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gan_adapters.errors import GanAdaptersError


@dataclass
class GeneratorBundle:
    """A generator and how to call it: latents (N, *latent_shape) [+ labels] -> images."""

    name: str
    model: nn.Module
    latent_shape: tuple[int, ...]
    image_size: int
    num_classes: int
    """0 for an unconditional generator."""
    forward_inputs: Callable[[torch.Tensor, torch.Tensor | None], tuple]
    class_embedding: str | None = None
    """Path of the module mapping the class input to its embedding (replaced by one learned
    embedding when fine-tuning a class-conditional generator)."""

    def example_inputs(self, batch: int = 2, seed: int = 0) -> tuple:
        """Deterministic inputs for tracing and tests."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn((batch, *self.latent_shape), generator=gen)
        labels = torch.zeros(batch, dtype=torch.long) if self.num_classes else None
        return self.forward_inputs(z, labels)


@dataclass(frozen=True)
class ModelEntry:
    """A registry entry: what a name builds, and whether it needs the internet."""

    description: str
    build: Callable[..., GeneratorBundle]
    needs_download: bool = False


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise GanAdaptersError(
            f"package {package!r} is not installed: pip install --no-deps {package.replace('_', '-')}"
        )
    return Path(spec.origin).parent / name


def _dcgan_faces(random_weights: bool = False, **_) -> GeneratorBundle:
    try:
        from gan_face_generate.models import Generator
    except ImportError as exc:
        raise GanAdaptersError(
            "dcgan-faces needs gan-face-generate: pip install --no-deps gan-face-generate==1.1.1 "
            "(its declared dependencies would pull torchvision and wandb, which it does not need)"
        ) from exc
    model = Generator(ngpu=0, nc=3, nz=100, ngf=64)
    if not random_weights:
        checkpoint = torch.load(
            _package_file("gan_face_generate", "weights.tar"), map_location="cpu", weights_only=True
        )
        model.load_state_dict(checkpoint["netG_state_dict"])
    return GeneratorBundle("dcgan-faces", model.eval(), (100, 1, 1), 64, 0, lambda z, labels: (z,))


def _biggan_deep(resolution: int):
    def build(random_weights: bool = False, truncation: float = 0.4, **config) -> GeneratorBundle:
        from pytorch_pretrained_biggan import BigGAN, BigGANConfig

        name = f"biggan-deep-{resolution}"
        if random_weights:
            if resolution != 128:
                raise GanAdaptersError(f"random weights are offered for biggan-deep-128 only, not {name}")
            # BigGANConfig's defaults are the 128 px model; options (e.g. channel_width=4) shrink it.
            model = BigGAN(BigGANConfig(**config))
            # Its unconditional output BN starts uninitialised (a checkpoint fills it).
            nn.init.ones_(model.generator.bn.weight)
            nn.init.zeros_(model.generator.bn.bias)
            _settle_spectral_norm(model, truncation)
        else:
            try:
                model = BigGAN.from_pretrained(name)
            except Exception as exc:
                raise GanAdaptersError(
                    f"could not download {name} ({type(exc).__name__}: {exc}); it needs the "
                    "internet once (cached under ~/.pytorch_pretrained_biggan), or use "
                    "random_weights for an offline smoke run"
                ) from exc
        classes = model.config.num_classes

        def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
            labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
            return z, nn.functional.one_hot(labels, classes).float(), truncation

        return GeneratorBundle(
            name, model.eval(), (model.config.z_dim,), resolution, classes, inputs, "embeddings"
        )

    return build


def _settle_spectral_norm(model: nn.Module, truncation: float, passes: int = 3) -> None:
    """Random spectral-norm layers start from random singular vectors; a few train-mode passes
    of power iteration make the random generator's outputs finite and stable."""
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            z = torch.randn(2, model.config.z_dim)
            model(z, torch.eye(model.config.num_classes)[:2], truncation)
    model.eval()


def import_lucidrains_stylegan2() -> types.ModuleType:
    """Import lucidrains' `stylegan2_pytorch` on a machine without a GPU or torchvision.

    Its module asserts a CUDA GPU at import and imports torchvision and aim for training
    utilities the generator never uses: the assertion is bypassed for the import only, and
    torchvision/aim get empty stand-ins when they are not installed.
    """
    name = "stylegan2_pytorch.stylegan2_pytorch"
    if name in sys.modules:
        return sys.modules[name]
    for missing in ("torchvision", "torchvision.transforms", "aim"):
        try:
            importlib.import_module(missing)
        except ImportError:
            sys.modules[missing] = types.ModuleType(missing)
    if isinstance(sys.modules.get("torchvision"), types.ModuleType) and not hasattr(
        sys.modules["torchvision"], "transforms"
    ):
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise GanAdaptersError(
            f"stylegan2-lucidrains needs stylegan2-pytorch: pip install --no-deps stylegan2-pytorch==1.9.0 "
            f"fire einops kornia vector-quantize-pytorch==0.1.0 ({exc})"
        ) from exc
    finally:
        torch.cuda.is_available = available


def _stylegan2_lucidrains(
    image_size: int = 32, latent_dim: int = 64, network_capacity: int = 4, **_
) -> GeneratorBundle:
    module = import_lucidrains_stylegan2()
    model = module.Generator(image_size=image_size, latent_dim=latent_dim, network_capacity=network_capacity)
    layers = model.num_layers

    def inputs(w: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        # The latent is the per-layer style (N, layers, latent_dim); noise is fixed to zero.
        noise = torch.zeros(w.shape[0], image_size, image_size, 1, device=w.device, dtype=w.dtype)
        return w, noise

    return GeneratorBundle("stylegan2-lucidrains", model.eval(), (layers, latent_dim), image_size, 0, inputs)


def _biggan_emoji(weights: str | Path | None = None, **_) -> GeneratorBundle:
    from gan_adapters.zoo.pretrain import load_generator_file

    path = (
        Path(weights)
        if weights is not None
        else Path(__file__).parent / "zoo" / "weights" / "biggan-emoji-64.safetensors"
    )
    if not path.is_file():
        raise GanAdaptersError(
            f"no biggan-emoji-64 weights at {path}: this release does not ship them yet. Train them on a GPU "
            "with `python -m gan_adapters.zoo.pretrain --data emoji-64-train.safetensors --out runs/biggan-emoji` "
            "(docs/zoo.md) and pass model_options weights=runs/biggan-emoji/generator-ema.safetensors"
        )
    generator, _ = load_generator_file(path)

    def inputs(z: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if labels is None else labels
        return z, labels

    config = generator.config
    return GeneratorBundle(
        "biggan-emoji-64", generator, (config.z_dim,), config.resolution, config.num_classes, inputs, "shared"
    )


MODELS: dict[str, ModelEntry] = {
    "dcgan-faces": ModelEntry(
        "DCGAN face generator of gan-face-generate (64 px, trained on DigiFace-1M; weights in its wheel)",
        _dcgan_faces,
    ),
    **{
        f"biggan-deep-{r}": ModelEntry(
            f"BigGAN-deep {r} px, ImageNet, class-conditional (pytorch-pretrained-biggan; downloads once)",
            _biggan_deep(r),
            needs_download=True,
        )
        for r in (128, 256, 512)
    },
    "biggan-emoji-64": ModelEntry(
        "BigGAN 64 px with class-conditional BN, pretrained on Noto emoji subgroups (zoo/biggan.py; weights=PATH)",
        _biggan_emoji,
    ),
    "stylegan2-lucidrains": ModelEntry(
        "StyleGAN2 of lucidrains' stylegan2-pytorch (random weights; adapters via targets=Conv2DMod)",
        _stylegan2_lucidrains,
    ),
}
"""Named generators; `module:callable` names load user code instead."""


def _user_generator(spec: str, checkpoint: str | Path | None, **options) -> GeneratorBundle:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GanAdaptersError(f"cannot import {spec!r}: {exc}") from exc
    built = factory(**options)
    if isinstance(built, GeneratorBundle):
        bundle = built
    elif isinstance(built, nn.Module):
        raise GanAdaptersError(
            f"{spec} returned a bare nn.Module; return a gan_adapters.models.GeneratorBundle so "
            "the CLI knows the latent shape and how to call it"
        )
    else:
        raise GanAdaptersError(f"{spec} returned {type(built).__name__}, not a GeneratorBundle")
    if checkpoint is not None:
        bundle.model.load_state_dict(read_weights(checkpoint))
    return bundle


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch checkpoint (loaded without pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise GanAdaptersError(f"no checkpoint at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "netG_state_dict", "G_ema", "generator"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    return state


def load_generator(name: str, checkpoint: str | Path | None = None, **options) -> GeneratorBundle:
    """A generator by registry name, or `package.module:factory` returning a GeneratorBundle."""
    if ":" in name:
        return _user_generator(name, checkpoint, **options)
    if name not in MODELS:
        raise GanAdaptersError(
            f"unknown model {name!r}; known: {', '.join(MODELS)}, or 'package.module:factory'"
        )
    bundle = MODELS[name].build(**options)
    if checkpoint is not None:
        bundle.model.load_state_dict(read_weights(checkpoint))
    return bundle
