"""Before the first step: one forward and backward on the bundle's example inputs, to find a
memory layout the generator runs in and to check its images against the training data.

Real generators break in channels_last in ways no attribute tells (5-D modulated-conv weights,
`.view` on weights in a hand-written spectral norm), so the probe tries it and falls back to the
contiguous layout with one warning. Its output must be images of the data's size with 3 channels
(1 channel: the data are converted to greyscale, announced) in the bundle's declared range.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

from gan_adapters.errors import DataError, GeneratorError
from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.modules import attributes_restored

log = logging.getLogger(__name__)


def _forward_backward(bundle: GeneratorBundle, labels: torch.Tensor | None, autocast) -> torch.Tensor:
    model = bundle.model
    z = torch.randn((2, *bundle.latent_shape), generator=torch.Generator().manual_seed(0))
    with attributes_restored(model), autocast():  # the probe leaves no trace (a spectral norm's u, say)
        out = model(*bundle.forward_inputs(z, labels))
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.float().square().mean().backward()
    for param in model.parameters():
        param.grad = None
    return out


def probe_layout(
    bundle: GeneratorBundle, channels_last: bool, labels: torch.Tensor | None = None, autocast=nullcontext
) -> tuple[torch.memory_format, torch.Tensor]:
    """(the layout to train in, the probe's output), with the model left in that layout; the probe
    runs under `autocast` (a context factory: the run's mixed precision)."""
    if channels_last:
        try:
            bundle.model.to(memory_format=torch.channels_last)
            return torch.channels_last, _forward_backward(bundle, labels, autocast)
        except Exception as exc:  # any failure in the user's code under this layout
            bundle.model.to(memory_format=torch.contiguous_format)
            log.warning(
                "%s does not run in channels_last (%s: %s); training in the contiguous layout "
                "(--no-channels-last / channels_last = false skips this check)",
                bundle.name,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
    try:
        return torch.contiguous_format, _forward_backward(bundle, labels, autocast)
    except Exception as exc:
        raise GeneratorError(
            f"{bundle.name} fails on its own example inputs before training: {type(exc).__name__}: {exc}"
        ) from exc


def fit_targets(bundle: GeneratorBundle, output: object, targets: torch.Tensor) -> torch.Tensor:
    """The training images as the generator's output must match them: same size and channels
    (RGB data for a 1-channel generator become greyscale, announced); else a clear error. Warns
    when the output leaves the bundle's declared range."""
    name = bundle.name
    if not isinstance(output, torch.Tensor) or output.dim() != 4:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise GeneratorError(f"{name} returns {shape}; the trainer needs images (N, C, H, W)")
    if output.shape[-2:] != targets.shape[-2:]:
        raise DataError(
            f"{name} makes {output.shape[-2]}x{output.shape[-1]} images but the training images were "
            f"resized to {targets.shape[-2]}x{targets.shape[-1]} "
            f"(the bundle's image_size={bundle.image_size}): "
            "set image_size to the generator's output size"
        )
    channels = output.shape[1]
    if channels == 1 and targets.shape[1] == 3:
        log.warning("%s makes 1-channel images: the training images are converted to greyscale", name)
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=targets.dtype, device=targets.device)
        targets = (targets * luma.view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif channels != targets.shape[1]:
        raise DataError(
            f"{name} makes {channels}-channel images; the training images have {targets.shape[1]} channels "
            "(gan-adapters reads images as RGB): a generator of 3 (or 1) channels is needed"
        )
    low, high = bundle.output_range
    margin = 0.5 * (high - low)
    seen = (float(output.detach().min()), float(output.detach().max()))
    if seen[0] < low - margin or seen[1] > high + margin:
        log.warning(
            "%s's images span [%.3g, %.3g], far outside its declared output_range (%g, %g): declare the "
            "range it really has in its GeneratorBundle (output_range=)",
            name,
            *seen,
            low,
            high,
        )
    return targets
