"""A folder of 25-100 target images, loaded once into one tensor.

Small data sets fit in memory many times over, so there is no loader: images are decoded
once, converted to RGB (transparency composited on white), centre-cropped, resized to the
generator's size and kept as an (N, 3, H, W) tensor in [-1, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gan_adapters.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class ImageSet:
    """Target images as a tensor, with the files they came from and those that were skipped."""

    images: torch.Tensor
    files: list[Path]
    skipped: list[Path]

    def __len__(self) -> int:
        return self.images.shape[0]


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (emoji and icons are drawn on alpha);
    16- and 32-bit greyscale scaled to 8 bits (PIL's own conversion would clip them to white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def center_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """The largest centred square, resized to size x size."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_image_folder(
    folder: str | Path,
    size: int,
    max_images: int | None = None,
    strict: bool = False,
    ignore: tuple[str, ...] = (),
) -> ImageSet:
    """Decode the images of a folder (sorted by name; the first `max_images` of them).

    Files named in `ignore` are left out. Files that are not images, or are corrupt, are skipped
    with one warning listing them;
    `strict=True` refuses them instead. An empty folder, or fewer images than asked for,
    is an error that names the folder and the counts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist (or is not a folder)")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name not in ignore
    )
    tensors, used, skipped = [], [], []
    for path in files:
        if max_images is not None and len(used) == max_images:
            break
        try:
            with Image.open(path) as image:
                image.load()
                tensors.append(image_to_tensor(center_crop_resize(to_rgb(image), size)))
            used.append(path)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            skipped.append(path)
    if skipped:
        names = ", ".join(p.name for p in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        if strict:
            raise DataError(f"{len(skipped)} files in {folder} are not readable images: {names}")
        log.warning("skipped %d files in %s that are not readable images: %s", len(skipped), folder, names)
    if not used:
        raise DataError(
            f"no readable images in {folder} (looked at {len(files)} files; "
            f"expected {', '.join(IMAGE_SUFFIXES)})"
        )
    if max_images is not None and len(used) < max_images:
        raise DataError(f"{folder} has {len(used)} readable images, fewer than the {max_images} asked for")
    return ImageSet(torch.stack(tensors), used, skipped)


def load_image_tensor(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """A class-labelled image set in one safetensors file (`render_emoji.py --tensor`), or that file
    gzipped (`.gz`: a third of the size, for a GPU window's carry): images uint8 (N, 3, H, W),
    labels int64 (N,), and the class names from its metadata."""
    import gzip
    import json
    import zlib

    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = (
            gzip.decompress(Path(path).read_bytes()) if str(path).endswith(".gz") else Path(path).read_bytes()
        )
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        classes = json.loads(header.get("__metadata__", {}).get("classes", "[]"))
        tensors = load(data)
        images, labels = tensors["images"], tensors["labels"]
    except FileNotFoundError as exc:
        raise DataError(f"no labelled image tensor file at {path}") from exc
    except (SafetensorError, OSError, EOFError, zlib.error, KeyError, ValueError) as exc:
        raise DataError(
            f"{path} is not a labelled image tensor file (render_emoji.py --tensor writes one; "
            f"safetensors with uint8 'images' and int64 'labels')"
        ) from exc
    if images.dtype != torch.uint8 or images.dim() != 4 or labels.shape != images.shape[:1]:
        raise DataError(
            f"{path}: expected uint8 images (N, 3, H, W) and one label each, got "
            f"{images.dtype} {tuple(images.shape)} and labels {tuple(labels.shape)}"
        )
    return images, labels.long(), classes
