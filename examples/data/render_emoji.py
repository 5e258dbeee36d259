"""Render Noto Color Emoji glyphs to square PNGs on white, one folder per data set.

Needs Debian's `fonts-noto-color-emoji` and `unicode-data` (the font and emoji-test.txt);
the rendered sets the demo and tests need are committed, so only regenerating needs them.

    python examples/data/render_emoji.py --subgroups 'face-.*' --limit 100 --out examples/data/emoji-faces

Glyphs are drawn at the font's bitmap size (109 px), cropped to their bounding box, padded
square, composited on white and resized with Lanczos. Files are named
`NNN-<subgroup>-<name>.png` in emoji-test.txt order, so `--limit` takes a stable prefix.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJIONE = Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")
"""EmojiOne's PNGs (Debian `ruby-gemojione`, CC-BY-SA-4.0): the same emoji in another style."""
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
BITMAP_SIZE = 109  # the only size the CBDT colour font holds


@dataclass(frozen=True)
class Emoji:
    """One fully-qualified emoji and where emoji-test.txt files it."""

    text: str
    name: str
    group: str
    subgroup: str


def read_emoji_test(path: Path = EMOJI_TEST) -> list[Emoji]:
    """Every fully-qualified emoji in file order, with its group and subgroup."""
    group = subgroup = ""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif "; fully-qualified" in line:
            codes, rest = line.split(";", 1)
            text = "".join(chr(int(code, 16)) for code in codes.split())
            name = re.sub(r"^E\d+\.\d+\s+", "", rest.split("#", 1)[1].strip().split(" ", 1)[1])
            found.append(Emoji(text, name, group, subgroup))
    return found


def render(emoji: Emoji, font: ImageFont.FreeTypeFont, size: int) -> Image.Image | None:
    """The glyph on white, square, `size` px; None where the font has no colour glyph."""
    canvas = Image.new("RGBA", (BITMAP_SIZE * 2, BITMAP_SIZE * 2), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text(
        (BITMAP_SIZE, BITMAP_SIZE), emoji.text, font=font, embedded_color=True, anchor="mm"
    )
    box = canvas.getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    white = Image.new("RGBA", square.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, square).convert("RGB").resize((size, size), Image.LANCZOS)


def render_emojione(emoji: Emoji, size: int) -> Image.Image | None:
    """EmojiOne's drawing of the emoji on white, `size` px; None where it has none."""
    codes = [f"{ord(c):04X}" for c in emoji.text]
    for name in ("-".join(codes), "-".join(c for c in codes if c != "FE0F")):
        path = EMOJIONE / f"{name}.png"
        if path.is_file():
            with Image.open(path) as image:
                rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB").resize((size, size), Image.LANCZOS)
    return None


def slug(text: str) -> str:
    """A file-name-safe version of an emoji name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subgroups", default="face-.*", help="regex over emoji-test.txt subgroups")
    parser.add_argument("--exclude-subgroups", default="^$", help="regex of subgroups to leave out")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--out", type=Path, required=True, help="a folder of PNGs, or with --tensor a .safetensors file"
    )
    parser.add_argument(
        "--tensor", action="store_true", help="one safetensors file: images, labels = subgroups"
    )
    parser.add_argument(
        "--style",
        choices=("noto", "emojione"),
        default="noto",
        help="noto: the Noto Color Emoji font; emojione: EmojiOne's PNGs (apt-get install ruby-gemojione)",
    )
    args = parser.parse_args()

    font = ImageFont.truetype(str(FONT), BITMAP_SIZE)
    chosen = [
        e
        for e in read_emoji_test()
        if re.fullmatch(args.subgroups, e.subgroup) and not re.fullmatch(args.exclude_subgroups, e.subgroup)
    ]
    rendered = []
    for emoji in chosen:
        image = (
            render_emojione(emoji, args.size) if args.style == "emojione" else render(emoji, font, args.size)
        )
        if image is not None:
            rendered.append((emoji, image))
        if args.limit and len(rendered) >= args.limit:
            break
    if args.tensor:
        save_tensor(rendered, args.out)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        for index, (emoji, image) in enumerate(rendered):
            image.save(args.out / f"{index:03d}-{emoji.subgroup}-{slug(emoji.name)}.png", optimize=True)
    print(f"wrote {len(rendered)} images to {args.out}")


def save_tensor(rendered: list[tuple[Emoji, Image.Image]], path: Path) -> None:
    """images uint8 (N, 3, H, W) and labels (N,) indexing the subgroups, names in the metadata."""
    import json

    import numpy as np
    import torch
    from safetensors.torch import save_file

    classes = list(dict.fromkeys(emoji.subgroup for emoji, _ in rendered))
    images = (
        torch.from_numpy(np.stack([np.asarray(image) for _, image in rendered]))
        .permute(0, 3, 1, 2)
        .contiguous()
    )
    labels = torch.tensor([classes.index(emoji.subgroup) for emoji, _ in rendered])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"images": images, "labels": labels}, str(path), metadata={"classes": json.dumps(classes)})


if __name__ == "__main__":
    main()
