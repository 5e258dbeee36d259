"""Generators written the ways real GAN code is written, none registered with gan-adapters.

Each is the failure mode of a family of repositories: a plain conditional BN with only buffers
and linear layers and no channel attribute (many BigGAN/SNGAN ports), label-embedding tables,
a condition passed by keyword, inputs packed in a dict or a dataclass, a module list zipped with
condition chunks, SyncBatchNorm, GroupNorm/InstanceNorm, a norm reused at two depths, and the
five styles users brought that broke once training started: SAGAN's hand-written spectral norm,
GigaGAN's adaptive 5-D kernels (no BN), an MLP with BatchNorm1d making 1-channel 28 px images,
FastGAN's noise from the global RNG, SNGAN's per-layer class tables. The `*()` factories at the
end return them as GeneratorBundles, for the CLI (`--model corpus:sagan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from generators import randomize_norm_statistics
from torch import nn

from gan_adapters.generators.registry import GeneratorBundle


class PlainConditionalBN(nn.Module):
    """BigGAN-style CBN written the plain way: running statistics as buffers, nn.Linear gain and
    bias, F.batch_norm in forward, and no attribute stating the width."""

    def __init__(self, width: int, cond: int) -> None:
        super().__init__()
        self.gain = nn.Linear(cond, width, bias=False)
        self.bias = nn.Linear(cond, width, bias=False)
        self.register_buffer("running_mean", torch.zeros(width))
        self.register_buffer("running_var", torch.ones(width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = F.batch_norm(x, self.running_mean, self.running_var, None, None, self.training, 0.1, 1e-4)
        return out * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]


class PlainBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = PlainConditionalBN(cin, cond), PlainConditionalBN(cout, cond)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class PlainBigGAN(nn.Module):
    """Hierarchical z split with a Python loop (torch.fx fails at the root); ch=96 at 128 px has
    BigGAN-128's 10 conditional BN layers (1536, 1536, 1536, 768, 768, 384, 384, 192, 192, 96)."""

    ARCH = {128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]), 16: ([2, 2], [2, 1])}  # noqa: RUF012

    def __init__(self, ch: int = 4, resolution: int = 16, z_dim: int = 12, embed: int = 8, classes: int = 5):
        super().__init__()
        ins, outs = self.ARCH[resolution]
        self.chunk = z_dim // (len(ins) + 1)
        self.shared = nn.Embedding(classes, embed)
        self.linear = nn.Linear(self.chunk, ins[0] * ch * 16)
        self.blocks = nn.ModuleList(
            PlainBlock(i * ch, o * ch, embed + self.chunk) for i, o in zip(ins, outs, strict=True)
        )
        self.out_bn = nn.BatchNorm2d(outs[-1] * ch)
        self.out = nn.Conv2d(outs[-1] * ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(z, self.chunk, 1)
        embedding = self.shared(labels)
        ys = [torch.cat([embedding, chunk], 1) for chunk in chunks[1:]]  # iterating: fx fails here
        h = self.linear(chunks[0]).view(z.shape[0], -1, 4, 4)
        for block, y in zip(self.blocks, ys, strict=True):
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.out_bn(h))))


class EmbeddingConditionalBN(nn.Module):
    """SNGAN-style: BatchNorm2d(affine=False) and per-class gain/bias tables read by integer labels."""

    def __init__(self, width: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(width, affine=False)
        self.gamma = nn.Embedding(classes, width)
        self.beta = nn.Embedding(classes, width)
        nn.init.normal_(self.gamma.weight, 1.0, 0.1)
        nn.init.normal_(self.beta.weight, 0.0, 0.1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gamma(labels)[:, :, None, None] + self.beta(labels)[:, :, None, None]


class SNGANStyle(nn.Module):
    def __init__(self, nz: int = 8, ch: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.bn1 = EmbeddingConditionalBN(ch, classes)
        self.up = nn.ConvTranspose2d(ch, ch, 4, 2, 1)
        self.bn2 = EmbeddingConditionalBN(ch, classes)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.stem(z), labels))
        return torch.tanh(self.out(F.relu(self.bn2(self.up(h), labels))))


class KeywordConditionalBN(PlainConditionalBN):
    """The condition can only be passed by keyword: forward(x, *, cond)."""

    def forward(self, x: torch.Tensor, *, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, cond)


class KeywordConditioned(nn.Module):
    def __init__(self, nz: int = 8, ch: int = 8, cond: int = 6) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.bn = KeywordConditionalBN(ch, cond)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(F.relu(self.bn(self.stem(z), cond=y))))


class DictInput(nn.Module):
    """forward takes one dict {'z': ..., 'scale': float}."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.bn = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, batch: dict) -> torch.Tensor:
        return torch.tanh(self.out(F.relu(self.bn(self.stem(batch["z"])))) * batch["scale"])


@dataclass
class Latents:
    z: torch.Tensor
    truncation: float = 1.0


class DataclassInput(DictInput):
    """forward takes a dataclass of inputs."""

    def forward(self, inputs: Latents) -> torch.Tensor:  # type: ignore[override]
        return torch.tanh(self.out(F.relu(self.bn(self.stem(inputs.z * inputs.truncation)))))


class ZippedBlocks(nn.Module):
    """A module list zipped with condition chunks: fx cannot iterate a traced tensor's chunks."""

    def __init__(self, nz: int = 8, ch: int = 8, cond: int = 3, depth: int = 3) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.norms = nn.ModuleList(PlainConditionalBN(ch, cond) for _ in range(depth))
        self.convs = nn.ModuleList(nn.Conv2d(ch, ch, 3, padding=1) for _ in range(depth))
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.stem(z)
        for norm, conv, chunk in zip(self.norms, self.convs, y.chunk(len(self.norms), 1), strict=True):
            h = conv(F.relu(norm(h, chunk)))
        return torch.tanh(self.out(h))


class OtherNorms(nn.Module):
    """SyncBatchNorm (runs as plain BN in eval on one process), GroupNorm and InstanceNorm2d."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.sync = nn.SyncBatchNorm(ch)
        self.group = nn.GroupNorm(2, ch)
        self.instance = nn.InstanceNorm2d(ch, affine=True)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.sync(self.stem(z)))
        h = F.relu(self.instance(self.group(h)))
        return torch.tanh(self.out(h))


class ReusedSequential(nn.Module):
    """One nn.Sequential(BatchNorm2d, ReLU) applied at two depths of the network."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = nn.ConvTranspose2d(nz, ch, 4)
        self.norm_act = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU())
        self.up = nn.ConvTranspose2d(ch, ch, 4, 2, 1)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.norm_act(self.stem(z))
        return torch.tanh(self.out(self.norm_act(self.up(h))))


class HandWrittenSpectralNorm(nn.Module):
    """SAGAN's own spectral norm: the weight is a plain attribute set in forward, u a plain attribute."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        weight = module.weight
        del module._parameters["weight"]
        self.weight_bar = nn.Parameter(weight.detach().clone())
        self.u = F.normalize(torch.randn(weight.shape[0]), dim=0)  # a plain attribute, not a buffer

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        w = self.weight_bar.view(self.weight_bar.shape[0], -1)
        u = self.u
        if self.training:
            v = F.normalize(w.t() @ u, dim=0)
            u = F.normalize(w @ v, dim=0)
            self.u = u.detach()
        v = F.normalize(w.t() @ u, dim=0)
        sigma = u @ (w @ v)
        self.module.weight = self.weight_bar / sigma
        return self.module(*args)


class SAGANStyle(nn.Module):
    """Spectral norm written by hand (attributes set in forward) and self-attention, with BatchNorm."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.stem = HandWrittenSpectralNorm(nn.ConvTranspose2d(nz, ch, 4))
        self.bn1 = nn.BatchNorm2d(ch)
        self.query = HandWrittenSpectralNorm(nn.Conv2d(ch, ch // 2, 1))
        self.key = HandWrittenSpectralNorm(nn.Conv2d(ch, ch // 2, 1))
        self.gamma = nn.Parameter(torch.tensor(0.5))
        self.up = HandWrittenSpectralNorm(nn.ConvTranspose2d(ch, ch, 4, 2, 1))
        self.bn2 = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.stem(z)))
        q, k = self.query(h).flatten(2), self.key(h).flatten(2)
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)
        h = h + self.gamma * (h.flatten(2) @ attention.transpose(1, 2)).view_as(h)
        return torch.tanh(self.out(F.relu(self.bn2(self.up(h)))))


class AdaptiveKernelConv(nn.Module):
    """GigaGAN's adaptive kernel selection: a bank of kernels (one 5-D weight) mixed per sample by
    the style, modulated and demodulated, run as one grouped conv. No normalisation layer."""

    def __init__(self, cin: int, cout: int, style: int, bank: int = 2) -> None:
        super().__init__()
        self.dim_out = cout
        self.bank = nn.Parameter(torch.randn(bank, cout, cin, 3, 3) * 0.2)
        self.select = nn.Linear(style, bank)
        self.affine = nn.Linear(style, cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, cin = x.shape[:2]
        kernel = torch.einsum("nk,koihw->noihw", torch.softmax(self.select(w), 1), self.bank)
        kernel = kernel * (1 + self.affine(w))[:, None, :, None, None]
        kernel = kernel * torch.rsqrt(kernel.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(
            x.reshape(1, n * cin, *x.shape[2:]), kernel.reshape(-1, cin, 3, 3), padding=1, groups=n
        )
        return out.reshape(n, -1, *x.shape[2:])


class GigaGANStyle(nn.Module):
    """A mapping network, a learned constant, two adaptive-kernel convs (one after a 2x upsample)."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.mapping = nn.Sequential(nn.Linear(nz, nz), nn.LeakyReLU(0.2), nn.Linear(nz, nz))
        self.const = nn.Parameter(torch.randn(1, ch, 4, 4))
        self.conv1, self.conv2 = AdaptiveKernelConv(ch, ch, nz), AdaptiveKernelConv(ch, ch, nz)
        self.to_rgb = nn.Conv2d(ch, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)
        h = F.leaky_relu(self.conv1(self.const.expand(z.shape[0], -1, -1, -1), w), 0.2)
        h = F.leaky_relu(self.conv2(F.interpolate(h, scale_factor=2), w), 0.2)
        return torch.tanh(self.to_rgb(h))


class MLPGenerator(nn.Module):
    """The classic MNIST GAN: linear layers with BatchNorm1d, one 28 px grey channel."""

    def __init__(self, nz: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(nz, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * hidden),
            nn.BatchNorm1d(2 * hidden),
            nn.ReLU(),
            nn.Linear(2 * hidden, 28 * 28),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], 1, 28, 28)


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)


class FastGANStyle(nn.Module):
    """FastGAN: GLU blocks with noise from the global RNG, BatchNorm, a skip-layer excitation."""

    def __init__(self, nz: int = 8, ch: int = 8) -> None:
        super().__init__()
        self.init = nn.Sequential(nn.ConvTranspose2d(nz, 2 * ch, 4), nn.BatchNorm2d(2 * ch), nn.GLU(1))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(ch, 2 * ch, 3, padding=1),
            NoiseInjection(),
            nn.BatchNorm2d(2 * ch),
            nn.GLU(1),
        )
        self.excite = nn.Sequential(
            nn.AdaptiveAvgPool2d(2), nn.Conv2d(ch, ch, 2), nn.SiLU(), nn.Conv2d(ch, ch, 1), nn.Sigmoid()
        )
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        low = self.init(z)
        high = self.up(low) * self.excite(low)
        return torch.tanh(self.out(F.interpolate(high, scale_factor=2)))


def _bundle(
    name: str, model: nn.Module, size: int, inputs, latent=(8, 1, 1), classes: int = 0
) -> GeneratorBundle:
    torch.manual_seed(0)
    return GeneratorBundle(name, randomize_norm_statistics(model).eval(), latent, size, classes, inputs)


def plain_biggan() -> GeneratorBundle:
    return _bundle(
        "plain-biggan",
        PlainBigGAN(),
        16,
        lambda z, y: (z, torch.zeros(len(z), dtype=torch.long) if y is None else y),
        (12,),
        5,
    )


def sngan() -> GeneratorBundle:
    return _bundle(
        "sngan",
        SNGANStyle(),
        8,
        lambda z, y: (z, torch.zeros(len(z), dtype=torch.long) if y is None else y),
        classes=4,
    )


def sagan() -> GeneratorBundle:
    return _bundle("sagan", SAGANStyle(), 8, lambda z, y: (z,))


def gigagan() -> GeneratorBundle:
    return _bundle("gigagan", GigaGANStyle(), 8, lambda z, y: (z.flatten(1),), (8,))


def mlp_mnist() -> GeneratorBundle:
    return _bundle("mlp-mnist", MLPGenerator(), 28, lambda z, y: (z,), (16,))


def fastgan() -> GeneratorBundle:
    return _bundle("fastgan", FastGANStyle(), 16, lambda z, y: (z,))


def keyword_conditioned() -> GeneratorBundle:
    return _bundle("keyword", KeywordConditioned(), 4, lambda z, y: (z, torch.ones(len(z), 6)))


def dict_input() -> GeneratorBundle:
    return _bundle("dict", DictInput(), 4, lambda z, y: ({"z": z, "scale": 0.9},))


def zipped_blocks() -> GeneratorBundle:
    return _bundle("zipped", ZippedBlocks(), 4, lambda z, y: (z, torch.ones(len(z), 9)))
