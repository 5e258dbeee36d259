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
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    font = ImageFont.truetype(str(FONT), BITMAP_SIZE)
    chosen = [
        e
        for e in read_emoji_test()
        if re.fullmatch(args.subgroups, e.subgroup) and not re.fullmatch(args.exclude_subgroups, e.subgroup)
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for emoji in chosen:
        image = render(emoji, font, args.size)
        if image is None:
            continue
        image.save(args.out / f"{written:03d}-{emoji.subgroup}-{slug(emoji.name)}.png", optimize=True)
        written += 1
        if args.limit and written >= args.limit:
            break
    print(f"wrote {written} images to {args.out}")


if __name__ == "__main__":
    main()
