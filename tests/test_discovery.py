"""How sites are found and inserted in the code styles that defeat plain torch.fx."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from generators import (
    BigGANStyleGenerator,
    DataDependentGenerator,
    InlineBlock,
    InlineNormGenerator,
    LabelNormGenerator,
    SharedNormGenerator,
    randomize_norm_statistics,
)
from torch import nn

import gan_adapters as ga


def _z(batch=2, nz=8):
    return torch.randn(batch, nz, 1, 1)


def test_biggan_style_ccbn_sites_are_module_sites_even_though_fx_fails_at_the_root():
    model = BigGANStyleGenerator(ch=4, resolution=32, dim_z=16, shared_dim=8, n_classes=5, attention=16)
    discovery = ga.find_norm_sites(model)
    assert discovery.route == "fx-partial"
    assert discovery.failures[0].module == "" and "generators.py:" in discovery.failures[0].location
    assert [s.id for s in discovery.sites] == [
        "blocks.0.bn1",
        "blocks.0.bn2",
        "blocks.1.bn1",
        "blocks.1.bn2",
        "blocks.3.bn1",
        "blocks.3.bn2",
        "output_layer.0",
    ]
    assert [s.class_name for s in discovery.sites] == ["ccbn"] * 6 + ["bn"]
    assert discovery.sites[0].condition == ("y", 1)
    assert discovery.sites[0].condition_features == 8 + 4


def test_wrapped_batchnorm_is_one_site_outermost_wins():
    discovery = ga.find_norm_sites(LabelNormGenerator())
    assert [s.id for s in discovery.sites] == ["norm1", "norm2"]
    assert all(s.class_name == "LabelConditionalNorm" for s in discovery.sites)
    assert discovery.sites[0].condition_is_label


def test_inline_batch_norm_rewrites_only_its_owner():
    model = randomize_norm_statistics(InlineNormGenerator()).eval()
    keys = list(model.state_dict())
    z = _z()
    with torch.no_grad():
        reference = model(z)
    adapted = ga.inject(model, kind="ssa")
    assert adapted is model
    assert isinstance(model.block, torch.fx.GraphModule), "the owner's forward became a graph"
    sites = {r.site: r.inserted_by for r in ga.summary(adapted).rows}
    assert sites == {"stem_bn": "hook", "block::batch_norm#0": "graph"}
    assert [k for k in adapted.state_dict() if "gan_adapters" not in k] == keys
    with torch.no_grad():
        adapted.block.gan_adapters_batch_norm_0["default"].shift.fill_(0.5)
        moved = adapted(z)
    assert not torch.equal(moved, reference)
    restored = ga.unload(adapted)
    assert type(restored.block) is InlineBlock
    with torch.no_grad():
        assert torch.equal(restored(z), reference)


class RootInlineNorm(nn.Module):
    """batch_norm written inline in the root's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(8, 6, 4)
        self.register_buffer("mean", torch.randn(6) * 0.1)
        self.register_buffer("var", torch.rand(6) + 0.5)
        self.out = nn.Conv2d(6, 3, 1)

    def forward(self, z):
        h = F.batch_norm(self.conv(z), self.mean, self.var, None, None, False)
        return torch.tanh(self.out(F.relu(h)))


def test_inline_batch_norm_in_the_root_returns_a_graph_module_and_says_so(caplog):
    model = RootInlineNorm().eval()
    z = _z()
    with torch.no_grad():
        reference = model(z)
    with caplog.at_level(logging.WARNING, logger="gan_adapters"):
        adapted = ga.inject(model, kind="apc")
    assert isinstance(adapted, torch.fx.GraphModule) and adapted is not model
    assert "GraphModule" in caplog.text
    assert set(model.state_dict()) <= set(adapted.state_dict())
    with torch.no_grad():
        assert torch.equal(adapted(z), reference)
    assert ga.unload(adapted) is model


def test_one_module_called_at_two_sites_gets_two_independent_adapters():
    model = randomize_norm_statistics(SharedNormGenerator()).eval()
    z = _z()
    adapted = ga.inject(model, kind="ssa")
    ids = [r.site for r in ga.summary(adapted).rows]
    assert ids == ["block::norm#0", "block::norm#1"]
    first = adapted.block.gan_adapters_norm_0["default"]
    second = adapted.block.gan_adapters_norm_1["default"]
    assert first is not second
    with torch.no_grad():
        base = adapted(z)
        first.shift.fill_(1.0)
        after_first = adapted(z)
        first.shift.fill_(0.0)
        second.shift.fill_(1.0)
        after_second = adapted(z)
    assert not torch.equal(after_first, base) and not torch.equal(after_second, base)
    assert not torch.allclose(after_first, after_second)


def test_module_route_shares_one_adapter_between_calls():
    adapted = ga.inject(SharedNormGenerator().eval(), kind="ssa", route="module")
    report = ga.summary(adapted)
    assert [r.site for r in report.rows] == ["block.norm"]
    assert report.route.startswith("module matching")


class UntraceableSharedBlock(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.norm = nn.BatchNorm2d(ch)

    def forward(self, x):
        halves = [self.norm(h) for h in torch.split(self.conv(x), 4, 0)]  # fx cannot iterate
        return self.norm(torch.cat(halves, 0))


def test_module_called_twice_in_an_untraceable_forward_shares_one_adapter_with_a_warning():
    model = nn.Sequential(nn.ConvTranspose2d(8, 8, 4), UntraceableSharedBlock()).eval()
    discovery = ga.find_norm_sites(model, example_inputs=(_z(8),))
    assert discovery.route == "export", "fx fails inside the block, which is inside the root's trace"
    assert [s.id for s in discovery.sites] == ["1.norm"]
    assert "called at 3 sites" in discovery.warnings[0]
    assert "generators.py" not in discovery.warnings[0] and "test_discovery.py:" in discovery.warnings[0]


def test_export_route_when_fx_fails_at_the_root_and_inputs_are_given():
    model = SharedNormGenerator().eval()
    discovery = ga.find_norm_sites(model, example_inputs=(_z(),))
    assert discovery.route == "export"
    assert [s.id for s in discovery.sites] == ["block::norm#0", "block::norm#1"]


def test_neither_fx_nor_export_falls_back_to_module_matching_and_explains():
    model = randomize_norm_statistics(DataDependentGenerator()).eval()
    z = _z()
    with torch.no_grad():
        reference = model(z)
    adapted = ga.inject(model, kind="apgc", group_size=4, example_inputs=(z,))
    report = ga.summary(adapted)
    assert report.route.startswith("module matching")
    assert "generators.py" in report.failures[0] and "control flow" in report.failures[0]
    assert any("torch.export failed too" in note for note in report.notes)
    with torch.no_grad():
        assert torch.equal(adapted(z), reference)


def test_route_fx_refuses_a_model_fx_cannot_trace_and_points_at_the_line():
    with pytest.raises(ga.SiteError, match=r"generators\.py:\d+"):
        ga.inject(SharedNormGenerator(), kind="ssa", route="fx")


def test_targets_by_class_regex_and_callable_and_exclude():
    model = BigGANStyleGenerator(ch=4, resolution=16, dim_z=12, shared_dim=8, n_classes=5)
    by_class = ga.find_norm_sites(model, targets=[nn.Conv2d])
    assert {s.class_name for s in by_class.sites} == {"Conv2d"}
    by_regex = ga.find_norm_sites(model, targets=r"blocks\.\d+\.bn1")
    assert [s.id for s in by_regex.sites] == ["blocks.0.bn1", "blocks.1.bn1"]
    by_callable = ga.find_norm_sites(model, targets=lambda path, m: path.endswith("bn2"))
    assert [s.id for s in by_callable.sites] == ["blocks.0.bn2", "blocks.1.bn2"]
    excluded = ga.find_norm_sites(model, exclude=["output_layer", "blocks.1"])
    assert [s.id for s in excluded.sites] == ["blocks.0.bn1", "blocks.0.bn2"]


def test_callable_targets_are_saved_as_the_paths_they_chose():
    model = BigGANStyleGenerator(ch=4, resolution=16, dim_z=12, shared_dim=8, n_classes=5)
    adapted = ga.inject(model, kind="ssa", targets=lambda path, m: path.endswith("bn2"))
    config = adapted._gan_adapters_state.adapters["default"].config
    assert config.targets == [r"blocks\.0\.bn2", r"blocks\.1\.bn2"]


def test_registered_norm_class_gets_its_condition_argument():
    class FiLMNorm(nn.Module):
        def __init__(self, width, cond):
            super().__init__()
            self.width = width
            self.film = nn.Linear(cond, 2 * width)

        def forward(self, truncation, x, style):
            mean, std = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True)
            scale, shift = self.film(style)[:, :, None, None].chunk(2, 1)
            return (x - mean) / (std + 1e-5) * (1 + scale) + shift

    ga.register_norm_class(FiLMNorm, condition="style", channels="width")
    model = nn.ModuleDict({"norm": FiLMNorm(6, 3)})
    sites = ga.find_norm_sites(model).sites
    assert [(s.id, s.channels, s.condition, s.condition_features) for s in sites] == [
        ("norm", 6, ("style", 2), 3)
    ]


def test_a_path_regex_still_matches_once_the_generator_is_wrapped_and_a_typo_is_refused():
    from collections import OrderedDict

    from corpus import PlainBigGAN

    wrapped = nn.Sequential(OrderedDict(generator=PlainBigGAN()))
    report = ga.summary(ga.inject(wrapped, kind="ssa", targets=[r"blocks\.\d+\.bn[12]"]))
    assert [r.site for r in report.rows] == [f"generator.blocks.{b}.bn{i}" for b in (0, 1) for i in (1, 2)]
    skipped = ga.inject(
        nn.Sequential(OrderedDict(generator=PlainBigGAN())), kind="ssa", exclude=[r"blocks\.1"]
    )
    assert [r.site for r in ga.summary(skipped).rows] == [
        "generator.blocks.0.bn1",
        "generator.blocks.0.bn2",
        "generator.out_bn",
    ]
    with pytest.raises(ga.SiteError, match=r"exclude= entry 'out_bm' matches no module.*out_bn"):
        ga.inject(PlainBigGAN(), kind="ssa", exclude=["out_bm"])


def test_torchs_own_dim_attribute_is_an_axis_not_a_width_but_a_users_dim_is_a_width():
    from corpus import AdaptiveKernelConv, FastGANStyle

    model = FastGANStyle().eval()
    with pytest.raises(ga.SiteError, match=r"cannot tell the channel count of 'up.4' \(GLU\)"):
        ga.find_norm_sites(model, targets=[r"up\.4"])  # nn.GLU(dim=1): 1 is the axis it splits
    measured = ga.find_norm_sites(model, targets=[r"up\.4"], example_inputs=(torch.randn(2, 8, 1, 1),))
    assert [s.channels for s in measured.sites] == [8]
    assert [
        s.channels
        for s in ga.find_norm_sites(
            nn.Sequential(AdaptiveKernelConv(4, 6, 3)), targets=["AdaptiveKernelConv"]
        ).sites
    ] == [6]


def test_the_summary_names_the_norm_like_layers_it_left_alone_and_how_to_adapt_them():
    from corpus import OtherNorms

    class PixelNorm(nn.Module):  # StyleGAN's hand-written channel norm: no affine, no buffers
        def forward(self, x):
            return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)

    model = OtherNorms()
    model.pixel, model.layer = PixelNorm(), nn.LayerNorm(8)
    report = ga.summary(ga.inject(model, kind="ssa"))
    assert [r.site for r in report.rows] == ["sync", "instance"]
    assert report.left_alone == {"GroupNorm": ["group"], "PixelNorm": ["pixel"], "LayerNorm": ["layer"]}
    assert "not adapted: GroupNorm x1 (group), PixelNorm x1 (pixel), LayerNorm x1 (layer)" in str(report)
    adapted = ga.summary(
        ga.inject(OtherNorms(), kind="ssa", targets=["SyncBatchNorm", "GroupNorm", "InstanceNorm2d"])
    )
    assert adapted.left_alone == {}


def test_a_width_given_per_target_needs_no_inputs_and_no_registered_class(tmp_path):
    from corpus import FastGANStyle

    adapted = ga.inject(FastGANStyle().eval(), kind="ssa", targets=[r"up\.4"], widths={"GLU": 8})
    assert [r.channels for r in ga.summary(adapted).rows] == [8]
    path = ga.save_adapters(adapted, tmp_path / "glu.safetensors")
    assert len(ga.summary(ga.load_adapters(FastGANStyle().eval(), path)).rows) == 1, "reloads without inputs"
    with pytest.raises(ga.ConfigError, match="must be a positive channel count"):
        ga.inject(FastGANStyle(), kind="ssa", targets=["GLU"], widths={"GLU": 0})
    with pytest.raises(ga.SiteError, match=r"give it as widths=\{'GLU': C\}"):
        ga.inject(FastGANStyle(), kind="ssa", targets=["GLU"])
