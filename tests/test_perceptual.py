"""The perceptual backbones: real offline weights, torchvision-format VGG16, clear errors."""

from __future__ import annotations

import pytest
import torch

from gan_adapters.errors import BackboneUnavailableError, GanAdaptersError
from gan_adapters.training.perceptual import build_perceptual


@pytest.mark.parametrize(("name", "layers"), [("effnet-lite0", 4), ("inception", 3)])
def test_offline_backbones_load_real_weights_and_compare_images(name, layers):
    loss = build_perceptual(name)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    targets = loss.target_features(images)
    assert len(targets) == layers
    assert loss(images, targets).item() == pytest.approx(0.0, abs=1e-6), "identical images: zero loss"
    shifted = loss(images.roll(8, dims=3), targets)
    assert shifted.item() > 0.01
    assert not any(p.requires_grad for p in loss.parameters()), "the backbone is frozen"
    generated = images.clone().requires_grad_(True)
    loss(generated.flip(3), targets).backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0


def test_vgg16_loads_torchvision_format_weights_from_a_path(tmp_path):
    layers = []
    channels = 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if item == "M":
            layers.append(torch.nn.MaxPool2d(2))
        else:
            layers += [torch.nn.Conv2d(channels, item, 3, padding=1), torch.nn.ReLU()]
            channels = item
    full = torch.nn.Sequential(*layers)
    state = {f"features.{k}": v for k, v in full.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision files carry a classifier too
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    loss = build_perceptual("vgg16", weights=path)
    assert torch.equal(loss.backbone.features[0].weight, full[0].weight)
    assert len(loss.target_features(torch.zeros(1, 3, 32, 32))) == 10, "conv1_1 .. conv4_3"
    assert loss.weight == 0.001, "the paper's per-layer weight"


def test_missing_weights_and_unknown_names_say_what_to_do(tmp_path):
    with pytest.raises(BackboneUnavailableError, match="VGG16 weights at .*: no checkpoint at"):
        build_perceptual("vgg16", weights=tmp_path / "missing.pth")
    with pytest.raises(GanAdaptersError, match="unknown perceptual backbone 'lpips'"):
        build_perceptual("lpips")
    assert build_perceptual("none") is None
