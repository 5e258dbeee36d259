"""Tiny generators as `package.module:factory` bundles, for fast training runs in the tests."""

from __future__ import annotations

import torch
from torch import nn

from gan_adapters.generators.registry import GeneratorBundle


def tiny_dcgan(nz: int = 8) -> GeneratorBundle:
    """A 16 px DCGAN with three BatchNorm2d layers (random, fixed weights)."""
    torch.manual_seed(1234)
    model = nn.Sequential(
        nn.ConvTranspose2d(nz, 32, 4, 1, 0, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 3, 1, 1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return GeneratorBundle("tiny-dcgan", model.eval(), (nz, 1, 1), 16, 0, lambda z, labels: (z,))


def tiny_biggan_deep() -> GeneratorBundle:
    """pytorch-pretrained-biggan's BigGAN-deep, 64 px, 4 channels wide, 10 classes."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(1234)
    config = BigGANConfig(
        output_dim=64,
        z_dim=8,
        class_embed_dim=8,
        channel_width=4,
        num_classes=10,
        layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (True, 4, 2), (True, 2, 1)],
        attention_layer_position=8,
    )
    model = BigGAN(config)
    nn.init.ones_(model.generator.bn.weight)
    nn.init.zeros_(model.generator.bn.bias)
    model.train()
    with torch.no_grad():  # settle spectral norm's power iteration
        for _ in range(3):
            model(torch.randn(2, 8), torch.eye(10)[:2], 0.5)
    model.eval()

    def inputs(z, labels):
        labels = torch.zeros(z.shape[0], dtype=torch.long) if labels is None else labels
        return z, nn.functional.one_hot(labels, 10).float(), 0.5

    return GeneratorBundle("tiny-biggan-deep", model, (8,), 64, 10, inputs, "embeddings")


class _NoisySpectralBlock(nn.Module):
    """A conv whose spectral norm (SAGAN's, written by hand) updates its u vector, a plain
    attribute, on every forward, and that adds noise drawn from the global RNG (StyleGAN's inputs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight_bar = nn.Parameter(torch.randn(cin, cout, 4, 4) * 0.2)
        self.u = nn.functional.normalize(torch.randn(cin), dim=0)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_bar.flatten(1)
        v = nn.functional.normalize(w.t() @ self.u, dim=0)
        self.u = nn.functional.normalize(w @ v, dim=0).detach()
        h = nn.functional.conv_transpose2d(x, self.weight_bar / (self.u @ (w @ v)), stride=2, padding=1)
        return torch.relu(self.norm(h + 0.1 * torch.randn_like(h)))


def noisy_spectral_dcgan(nz: int = 8) -> GeneratorBundle:
    """16 px: noise from the global RNG in forward and state outside buffers that forward updates."""
    torch.manual_seed(1234)
    model = nn.Sequential(
        nn.ConvTranspose2d(nz, 16, 4, 1, 0),
        _NoisySpectralBlock(16, 8),
        nn.ConvTranspose2d(8, 3, 4, 2, 1),
        nn.Tanh(),
    )
    return GeneratorBundle("noisy-spectral-dcgan", model.eval(), (nz, 1, 1), 16, 0, lambda z, labels: (z,))


LABELS_SEEN: list[list[int] | None] = []
"""What `recording_sngan` was asked to generate: the labels of each call (None: none given)."""


def recording_sngan() -> GeneratorBundle:
    """The corpus's SNGAN (per-layer class tables, no shared embedding), recording its labels."""
    from corpus import sngan

    bundle = sngan()
    inner = bundle.forward_inputs

    def inputs(z, labels):
        LABELS_SEEN.append(None if labels is None else labels.tolist())
        return inner(z, labels)

    bundle.forward_inputs = inputs
    return bundle
