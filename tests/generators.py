"""Small generators written in the styles real GAN code uses and torch.fx cannot trace.

- `BigGANStyleGenerator`: ajbrock/BigGAN-PyTorch's layout (hierarchical z split into chunks
  with torch.split and a Python loop, `ccbn(x, y)` and `bn` layers that call F.batch_norm
  on their own buffers, spectral norm, attention); at ch=96, 128 px it has BigGAN-128's shape.
- `LabelNormGenerator`: a conditional norm wrapping BatchNorm2d(affine=False) plus a label
  embedding, and a `y.type(torch.LongTensor)` cast in the top-level forward.
- `InlineNormGenerator`: batch_norm written inline in a block's forward (no norm module).
- `SharedNormGenerator`: one BatchNorm2d module called at two sites.
- `DataDependentGenerator`: Python control flow on tensor values (neither fx nor export).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


def sn_linear(i: int, o: int) -> nn.Linear:
    return spectral_norm(nn.Linear(i, o))


def sn_conv(i: int, o: int, k: int = 3) -> nn.Conv2d:
    return spectral_norm(nn.Conv2d(i, o, k, padding=k // 2))


class ccbn(nn.Module):
    """Class-conditional BN: gain = 1 + FC(y), bias = FC(y), normalisation by F.batch_norm."""

    def __init__(self, output_size: int, input_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.output_size, self.eps = output_size, eps
        self.gain = sn_linear(input_size, output_size)
        self.bias = sn_linear(input_size, output_size)
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        bias = self.bias(y).view(y.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        return out * gain + bias


class bn(nn.Module):
    def __init__(self, output_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.output_size, self.eps = output_size, eps
        self.gain = nn.Parameter(torch.ones(output_size))
        self.bias = nn.Parameter(torch.zeros(output_size))
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return F.batch_norm(
            x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, 0.1, self.eps
        )


class Attention(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.theta, self.phi = sn_conv(ch, ch // 8, 1), sn_conv(ch, ch // 8, 1)
        self.g, self.o = sn_conv(ch, ch // 2, 1), sn_conv(ch // 2, ch, 1)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(n, c // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).view(n, c // 2, h * w // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(n, c // 2, h, w))
        return x + self.gamma * o


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = ccbn(cin, cond), ccbn(cout, cond)
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.conv_sc = sn_conv(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class BigGANStyleGenerator(nn.Module):
    """BigGAN-PyTorch layout; ch=96, resolution=128 gives BigGAN-128's 10 ccbn layers."""

    ARCH: ClassVar[dict] = {
        128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
        32: ([4, 4, 4], [4, 4, 4]),
        16: ([2, 2], [2, 1]),
    }

    def __init__(
        self,
        ch: int = 4,
        resolution: int = 16,
        dim_z: int = 12,
        shared_dim: int = 8,
        n_classes: int = 5,
        attention: int | None = None,
    ) -> None:
        super().__init__()
        ins, outs = self.ARCH[resolution]
        self.num_slots = len(ins) + 1
        self.z_chunk = dim_z // self.num_slots
        cond = shared_dim + self.z_chunk
        self.shared = nn.Embedding(n_classes, shared_dim)
        self.linear = sn_linear(self.z_chunk, ins[0] * ch * 16)
        blocks: list[nn.Module] = []
        res = 4
        for cin, cout in zip(ins, outs, strict=True):
            res *= 2
            blocks.append(GBlock(cin * ch, cout * ch, cond))
            if attention == res:
                blocks.append(Attention(cout * ch))
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(bn(outs[-1] * ch), nn.ReLU(), sn_conv(outs[-1] * ch, 3))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zs = torch.split(z, self.z_chunk, 1)
        ys = [torch.cat([y, chunk], 1) for chunk in zs[1:]]
        h = self.linear(zs[0]).view(z.size(0), -1, 4, 4)
        index = 0
        for block in self.blocks:
            if isinstance(block, GBlock):
                h = block(h, ys[index])
                index += 1
            else:
                h = block(h)
        return torch.tanh(self.output_layer(h))


class LabelConditionalNorm(nn.Module):
    """Wraps BatchNorm2d(affine=False); gain and bias come from a label embedding."""

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.embed = nn.Embedding(n_classes, 2 * channels)
        nn.init.normal_(self.embed.weight, 0.0, 0.2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.embed(y).chunk(2, 1)
        return self.bn(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class LabelNormGenerator(nn.Module):
    def __init__(self, nz: int = 8, ch: int = 8, n_classes: int = 3) -> None:
        super().__init__()
        self.fc = nn.ConvTranspose2d(nz, ch * 2, 4)
        self.norm1 = LabelConditionalNorm(ch * 2, n_classes)
        self.up = nn.ConvTranspose2d(ch * 2, ch, 4, 2, 1)
        self.norm2 = LabelConditionalNorm(ch, n_classes)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.type(torch.LongTensor)
        h = F.relu(self.norm1(self.fc(z.view(z.size(0), -1, 1, 1)), y))
        return torch.tanh(self.out(F.relu(self.norm2(self.up(h), y))))


class InlineBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.weight = nn.Parameter(torch.rand(cout) + 0.5)
        self.bias = nn.Parameter(torch.randn(cout) * 0.1)
        self.register_buffer("running_mean", torch.randn(cout) * 0.1)
        self.register_buffer("running_var", torch.rand(cout) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = F.batch_norm(h, self.running_mean, self.running_var, self.weight, self.bias, self.training)
        return F.relu(h)


class InlineNormGenerator(nn.Module):
    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch * 2, 4)
        self.stem_bn = nn.BatchNorm2d(ch * 2)
        self.block = InlineBlock(ch * 2, ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.block(F.relu(self.stem_bn(self.stem(z))))))


class SharedNormBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)
        self.norm = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm(self.conv1(x)))
        return F.relu(self.norm(self.conv2(h))) + x


class SharedNormGenerator(nn.Module):
    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.block = SharedNormBlock(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(z, 4, 1)  # a Python loop over chunks: fx fails here, at the root
        z = torch.cat([c for c in chunks], 1)
        return torch.tanh(self.out(self.block(self.stem(z))))


class DataDependentGenerator(nn.Module):
    """Branches on a tensor's value: fx and torch.export both fail; module matching still works."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.norm = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.stem(z))
        if h.mean() > 100:
            h = h * 0
        return torch.tanh(self.out(F.relu(h)))


def randomize_norm_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every norm buffer and affine non-trivial values, so identity tests mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("running_mean", "stored_mean", "bias") and tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif leaf in ("running_var", "stored_var", "weight", "gain") and tensor.dim() == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    return model
