"""inject() on generator code it has never seen, with no hints and no example inputs.

Every generator of the corpus (tests/corpus.py, plus a real pretrained class-conditional DCGAN)
must: start as the exact identity; have its adapters on the data path; send gradients only
into adapters; survive a save/load round trip into a fresh copy; and unload exactly.
"""

from __future__ import annotations

import copy

import pytest
import torch
from corpus import (
    DataclassInput,
    DictInput,
    KeywordConditioned,
    Latents,
    OtherNorms,
    PlainBigGAN,
    ReusedSequential,
    SAGANStyle,
    SNGANStyle,
    ZippedBlocks,
)
from generators import randomize_norm_statistics

import gan_adapters as ga
from gan_adapters.surgery.slots import is_adapter_key

CASES = {
    "plain-biggan": (
        PlainBigGAN,
        lambda: (torch.randn(2, 12), torch.tensor([1, 3])),
        dict(kind="apgc", group_size=4),
        5,
    ),
    "sngan-embedding-tables": (
        SNGANStyle,
        lambda: (torch.randn(2, 8, 1, 1), torch.tensor([0, 3])),
        dict(kind="ssa", conditional=True),
        2,
    ),
    "keyword-condition": (
        KeywordConditioned,
        lambda: (torch.randn(2, 8, 1, 1), torch.randn(2, 6)),
        dict(kind="apgc", group_size=4, conditional=True),
        1,
    ),
    "dict-input": (DictInput, lambda: ({"z": torch.randn(2, 8, 1, 1), "scale": 0.9},), dict(kind="apc"), 1),
    "dataclass-input": (
        DataclassInput,
        lambda: (Latents(torch.randn(2, 8, 1, 1), 0.7),),
        dict(kind="ssa"),
        1,
    ),
    "zip-over-chunks": (
        ZippedBlocks,
        lambda: (torch.randn(2, 8, 1, 1), torch.randn(2, 9)),
        dict(kind="ssa", conditional=True),
        3,
    ),
    "sync-group-instance-norms": (
        OtherNorms,
        lambda: (torch.randn(2, 8, 1, 1),),
        dict(kind="apgc", group_size=2, targets=["SyncBatchNorm", "GroupNorm", "InstanceNorm2d"]),
        3,
    ),
    # The BN inside is one module at two depths, and no one forward calls it twice: one shared adapter.
    "sagan-hand-written-spectral-norm": (
        SAGANStyle,
        lambda: (torch.randn(2, 8, 1, 1),),
        dict(kind="apgc", group_size=4),
        2,
    ),
    "sequential-reused-at-two-depths": (
        ReusedSequential,
        lambda: (torch.randn(2, 8, 1, 1),),
        dict(kind="apgc", group_size=4),
        1,
    ),
}


def _perturb(model: torch.nn.Module, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in ga.trainable_parameters(model):
            param.add_(torch.randn(param.shape, generator=gen) * 0.2)


def check_generator(model: torch.nn.Module, inputs: tuple, options: dict, sites: int, tmp_path) -> None:
    """The five promises, on any generator."""
    model = randomize_norm_statistics(model).eval()
    pristine, original_keys = copy.deepcopy(model), list(model.state_dict())
    with torch.no_grad():
        reference = model(*inputs)
    adapted = ga.inject(model, **options)
    assert len(ga.summary(adapted).rows) == sites
    with torch.no_grad():
        assert torch.equal(adapted(*inputs), reference), "identity at init"

    adapted(*inputs).square().mean().backward()
    with_grad = {name for name, p in adapted.named_parameters() if p.grad is not None}
    assert with_grad and all(is_adapter_key(name) for name in with_grad), "gradients only into adapters"
    assert all(p.grad.abs().sum() > 0 for p in ga.trainable_parameters(adapted)), "every adapter is used"

    _perturb(adapted)
    with torch.no_grad():
        moved = adapted(*inputs)
    assert not torch.allclose(moved, reference, atol=1e-4), "adapters are on the data path"
    ga.save_adapters(adapted, tmp_path / "domain.safetensors")
    reloaded = ga.load_adapters(copy.deepcopy(pristine), tmp_path / "domain.safetensors")
    with torch.no_grad():
        assert torch.equal(reloaded(*inputs), moved), "save/load round trip"

    base = ga.unload(adapted)
    assert type(base) is type(pristine) and list(base.state_dict()) == original_keys
    assert not any(p.requires_grad is False for p in base.parameters()), "requires_grad restored"
    with torch.no_grad():
        assert torch.equal(base(*inputs), reference), "unload is exact"


@pytest.mark.parametrize("case", list(CASES))
def test_corpus_generator(case, tmp_path):
    factory, inputs, options, sites = CASES[case]
    check_generator(factory(), inputs(), options, sites, tmp_path)


def test_pretrained_class_conditional_dcgan(tmp_path):
    bundle = ga.load_generator("eyes-cdcgan-128")
    z = torch.randn(2, 100, 1, 1)
    inputs = bundle.forward_inputs(z, torch.tensor([1, 5]))
    assert inputs[1].shape == (2, 8) and inputs[1].sum(1).tolist() == [1.0, 1.0], "one-hot eye colours"
    check_generator(bundle.model, inputs, dict(kind="apgc", ratio=8), 5, tmp_path)
    report = ga.summary(ga.inject(bundle.model, kind="apgc", ratio=8))
    assert [r.channels for r in report.rows] == [1024, 512, 256, 128, 64]
    assert report.adapter_parameters == 31_744 and report.ratio == 8.0


def test_biggan_128_shape_of_the_plain_style_reproduces_the_research_arithmetic():
    with torch.device("meta"):
        model = PlainBigGAN(ch=96, resolution=128, z_dim=120, embed=128, classes=1000)
    expected = {"ssa": 14_784, "apgc-4": 29_568, "apgc-8": 59_136, "apgc-16": 118_272, "apc": 8_635_392}
    for label, count in expected.items():
        kind, _, size = label.partition("-")
        options = dict(kind=kind, group_size=int(size)) if size else dict(kind=kind)
        adapted = ga.inject(model, exclude="out_bn", **options)
        report = ga.summary(adapted)
        assert [r.channels for r in report.rows] == [1536, 1536, 1536, 768, 768, 384, 384, 192, 192, 96]
        assert report.adapter_parameters == count, label
        model = ga.unload(adapted)


def test_channels_are_read_from_buffers_and_conditioning_layers_without_inputs():
    from corpus import EmbeddingConditionalBN, PlainConditionalBN

    from gan_adapters.surgery.channels import channel_evidence

    plain = channel_evidence(PlainConditionalBN(24, 7))
    assert plain.channels == 24 and "running_mean" in plain.describe() and "conditioning" in plain.describe()
    assert channel_evidence(EmbeddingConditionalBN(10, 3)).channels == 10

    class Ambiguous(torch.nn.Module):  # one layer producing gain and bias together: 2C or C?
        def __init__(self) -> None:
            super().__init__()
            self.affine = torch.nn.Linear(5, 12)

        def forward(self, x, y):
            gain, bias = self.affine(y).chunk(2, 1)
            return (
                torch.nn.functional.batch_norm(x, None, None, training=True) * gain[..., None, None]
                + bias[..., None, None]
            )

    evidence = channel_evidence(Ambiguous())
    assert evidence.channels is None and "6 or 12" in evidence.describe()

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm = torch.nn.Conv2d(3, 6, 1), Ambiguous()

        def forward(self, x, y):
            return self.norm(self.conv(x), y)

    model = Holder()
    with pytest.raises(
        ga.SiteError, match=r"cannot tell the channel count of 'norm'.*6 or 12.*example_inputs="
    ):
        ga.inject(model, targets="Ambiguous")
    measured = ga.inject(
        model, targets="Ambiguous", kind="ssa", example_inputs=(torch.randn(2, 3, 4, 4), torch.randn(2, 5))
    )
    assert ga.summary(measured).rows[0].channels == 6


def test_tracing_leaves_no_proxy_in_a_model_whose_forward_sets_attributes():
    """A hand-written spectral norm sets `module.weight` in forward: after discovery, inject and a
    refused inject, every attribute is what it was and the model still pickles."""
    import io

    import torch.fx as fx

    def proxies(model):
        return [
            f"{n}.{k}"
            for n, m in model.named_modules()
            for k, v in m.__dict__.items()
            if isinstance(v, fx.Proxy)
        ]

    model = SAGANStyle().eval()
    before = {n: dict(m.__dict__) for n, m in model.named_modules()}
    ga.find_norm_sites(model)
    assert proxies(model) == [] and {n: set(m.__dict__) for n, m in model.named_modules()} == {
        n: set(d) for n, d in before.items()
    }
    with pytest.raises(ga.SiteError):
        ga.inject(model, kind="apgc", group_size=3)
    assert proxies(model) == []
    adapted = ga.inject(model, kind="apgc", group_size=4)
    assert proxies(adapted) == []
    torch.save(adapted, io.BytesIO())


def test_a_multi_dimensional_tensor_says_nothing_about_a_width():
    """Only 1-D buffers and parameters are per-channel; a (3, C) table beside them is not C wide."""

    class TableNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("running_mean", torch.zeros(6))
            self.register_buffer("running_var", torch.ones(6))
            self.table = torch.nn.Parameter(torch.ones(3, 6))

        def forward(self, x):
            return (
                torch.nn.functional.batch_norm(x, self.running_mean, self.running_var)
                * self.table[0, :, None, None]
            )

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 6, 1), TableNorm())
    assert [s.channels for s in ga.find_norm_sites(model, targets=["TableNorm"]).sites] == [6]
