"""Writing generated images: single PNGs, grids, strips and GIFs (no torchvision needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_adapters.files import write_atomically


def to_pil(image: torch.Tensor) -> Image.Image:
    """One (3, H, W) image in [-1, 1] (or (1, H, W) greyscale) as an RGB PIL image."""
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy())


def make_grid(images: torch.Tensor, columns: int = 8, padding: int = 2) -> Image.Image:
    """(N, 3, H, W) images in [-1, 1] tiled row by row on white."""
    count, _, height, width = images.shape
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    canvas = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255, np.uint8
    )
    for index in range(count):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = np.asarray(to_pil(images[index]))
    return Image.fromarray(canvas)


def labelled_rows(rows: dict[str, torch.Tensor], scale: int = 2, padding: int = 2) -> Image.Image:
    """One row of images per label ({label: (N, 3, H, W) in [-1, 1]}), the label written to its
    left, enlarged `scale` times (nearest) so that small images can be looked at."""
    from PIL import ImageDraw

    grids = [make_grid(images, columns=images.shape[0], padding=padding) for images in rows.values()]
    grids = [g.resize((g.width * scale, g.height * scale), Image.NEAREST) for g in grids]
    margin = 8 + 6 * max(len(label) for label in rows)
    canvas = Image.new("RGB", (margin + max(g.width for g in grids), sum(g.height for g in grids)), "white")
    draw, top = ImageDraw.Draw(canvas), 0
    for label, grid in zip(rows, grids, strict=True):
        canvas.paste(grid, (margin, top))
        draw.text((4, top + grid.height // 2 - 5), label, fill="black")
        top += grid.height
    return canvas


def save_png(image: Image.Image, path: Path) -> Path:
    """Write a PNG atomically (a reader never sees half an image)."""
    write_atomically(path, lambda tmp: image.save(tmp, format="PNG"))
    return path


OVERVIEWS = ("grid.png", "compare.png", "strip.png")
"""Pictures of many samples that `sample`/`interpolate` write beside them (never scored as one)."""


def save_images(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    """Each image as its own PNG: folder/prefix-0000.png, ...; earlier prefix-*.png files there are
    removed first, so a folder never mixes two calls' images."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}-*.png"):
        stale.unlink()
    return [save_png(to_pil(image), folder / f"{prefix}-{i:04d}.png") for i, image in enumerate(images)]


def save_gif(images: torch.Tensor, path: Path, frame_ms: int = 80, bounce: bool = True) -> Path:
    """An animated GIF of the frames (played forth and back with `bounce`)."""
    frames = [to_pil(image) for image in images]
    if bounce:
        frames = frames + frames[-2:0:-1]
    write_atomically(
        path,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
        ),
    )
    return path
