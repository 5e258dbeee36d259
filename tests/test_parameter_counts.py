"""The research's parameter arithmetic, exactly, on a BigGAN-128-shaped generator (ch=96)."""

from __future__ import annotations

import pytest
import torch
from generators import BigGANStyleGenerator

import gan_adapters as ga


@pytest.fixture(scope="module")
def biggan_128():
    # Built on the meta device: the shapes of 70 M parameters without their memory or time.
    with torch.device("meta"):
        return BigGANStyleGenerator(
            ch=96, resolution=128, dim_z=120, shared_dim=128, n_classes=1000, attention=64
        )


def test_the_generator_has_biggan_128s_shape(biggan_128):
    total = sum(p.numel() for p in biggan_128.parameters())
    assert 70.3e6 < total < 70.5e6, total
    sites = ga.find_norm_sites(biggan_128, targets=["ccbn"]).sites
    assert [s.channels for s in sites] == [1536, 1536, 1536, 768, 768, 384, 384, 192, 192, 96]


@pytest.mark.parametrize(
    ("options", "expected", "ratio"),
    [
        (dict(kind="ssa"), 14_784, 1),
        (dict(kind="apgc", group_size=4), 29_568, 2),
        (dict(kind="apgc", group_size=8), 59_136, 4),
        (dict(kind="apgc", group_size=16), 118_272, 8),
        (dict(kind="apgc", ratio=2), 29_568, 2),
        (dict(kind="apgc", ratio=8), 118_272, 8),
        (dict(kind="apc"), 8_635_392, 8_635_392 / 14_784),
    ],
)
def test_adapter_parameters_over_the_ten_ccbn_sites(biggan_128, options, expected, ratio):
    adapted = ga.inject(biggan_128, targets=["ccbn"], **options)
    try:
        report = ga.summary(adapted)
        assert len(report.rows) == 10
        assert report.adapter_parameters == expected
        assert report.trainable_parameters == expected, "nothing but the adapters trains"
        assert report.ratio == pytest.approx(ratio)
    finally:
        ga.unload(adapted)


def test_groups_spelling_and_the_output_bn(biggan_128):
    adapted = ga.inject(biggan_128, kind="apgc", groups=6)  # 6 groups divide every width
    try:
        rows = ga.summary(adapted).rows
        assert len(rows) == 11 and rows[-1].site == "output_layer.0" and rows[-1].layer == "bn"
        assert [r.group_size for r in rows] == [
            c // 6 for c in (1536, 1536, 1536, 768, 768, 384, 384, 192, 192, 96, 96)
        ]
    finally:
        ga.unload(adapted)


def test_train_norm_counts_the_conditional_layers_too(biggan_128):
    adapted = ga.inject(biggan_128, kind="ssa", targets=["ccbn"], train_norm=True)
    try:
        report = ga.summary(adapted)
        fc = sum(p.numel() for n, p in adapted.named_parameters() if ".bn" in n and "gan_adapters" not in n)
        assert report.trainable_parameters == 14_784 + fc
        assert report.adapter_parameters == 14_784
    finally:
        ga.unload(adapted)
