"""The grouped 1x1 convolution the point-wise adapters run, in three interchangeable ways.

All three compute out[n, i, ...] = sum_j weight[i, j] * x[n, group(i) * g + j, ...] + bias[i]
for a weight of shape (C, g), on inputs of shape (N, C), (N, C, L) or (N, C, H, W):

- `conv`: cuDNN's (or ATen's) grouped convolution; keeps channels_last;
- `bmm`: the groups as a batch of small matrix products over the pixels;
- `dense`: the block-diagonal C x C matrix as one ordinary 1x1 convolution (g x more
  arithmetic, but the GEMM kernels libraries tune hardest).

Which one is fastest depends on the GPU, the dtype and the shape, so `paths.choose_path` picks
from a measured table; `tests/test_pointwise.py` proves the three agree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Implementation = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", int], torch.Tensor]

POINTWISE_IMPLEMENTATIONS: dict[str, Implementation] = {}
"""Grouped 1x1 implementations by name; extend with `register_pointwise`."""


def register_pointwise(name: str) -> Callable[[Implementation], Implementation]:
    """Decorator that makes a function (x, weight (C, g), bias or None, groups) -> out selectable."""

    def add(function: Implementation) -> Implementation:
        POINTWISE_IMPLEMENTATIONS[name] = function
        return function

    return add


def _bias_added(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return out if bias is None else out + bias.reshape(1, -1, *([1] * (out.dim() - 2)))


@register_pointwise("conv")
def grouped_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
) -> torch.Tensor:
    """A grouped 1x1 convolution (conv2d on images, conv1d on anything else)."""
    if x.dim() == 4:
        return F.conv2d(x, weight[:, :, None, None], bias, groups=groups)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return F.conv1d(flat, weight[:, :, None], bias, groups=groups).reshape(x.shape)


@register_pointwise("bmm")
def grouped_matmul(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
) -> torch.Tensor:
    """The groups as batched (g x g) @ (g x pixels) products; channels_last inputs stay so."""
    n, channels = x.shape[:2]
    size = channels // groups
    blocks = weight.reshape(groups, size, size)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        pixels = x.permute(0, 2, 3, 1).reshape(-1, groups, size)  # a view: (N*H*W, G, g)
        mixed = torch.einsum("pgj,gij->pgi", pixels, blocks)
        out = mixed.reshape(n, x.shape[2], x.shape[3], channels).permute(0, 3, 1, 2)
    else:
        out = torch.matmul(blocks, x.reshape(n, groups, size, -1)).reshape(x.shape)
    return _bias_added(out, bias)


@register_pointwise("dense")
def block_diagonal_dense(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int
) -> torch.Tensor:
    """The block-diagonal C x C weight as one ungrouped 1x1 convolution."""
    size = weight.shape[1]
    dense = torch.block_diag(*weight.reshape(groups, size, size)) if groups > 1 else weight
    return grouped_conv(x, dense, bias, 1)


def identity_blocks(channels: int, group_size: int, like: torch.Tensor) -> torch.Tensor:
    """The (C, g) weight of the identity map in the grouped layout."""
    return torch.eye(group_size, dtype=like.dtype, device=like.device).repeat(channels // group_size, 1)


def fold_affine_into_pointwise(
    delta: torch.Tensor, bias: torch.Tensor | None, scale: torch.Tensor, shift: torch.Tensor, groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one grouped 1x1 computing y + conv(y, delta) + bias for y = x * scale + shift.

    (I + D)(a x + c) + b = [(I + D) diag(a)] x + [(I + D) c + b]: the norm's per-channel affine
    moves into the columns of the adapter's blocks, and its shift into the bias.
    """
    channels, size = delta.shape
    full = (identity_blocks(channels, size, delta) + delta).reshape(groups, size, size)
    weight = (full * scale.reshape(groups, 1, size)).reshape(channels, size)
    folded_bias = torch.matmul(full, shift.reshape(groups, size, 1)).reshape(channels)
    return weight, folded_bias if bias is None else folded_bias + bias
