"""The research setup on BigGAN-deep (pytorch-pretrained-biggan): a class-conditional generator
with hierarchical z, class-conditional BN in every block, one learned class embedding for the
new domain, and grouped point-wise adapters (apgc) sized by their parameter ratio.

    # pretrained ImageNet weights (downloaded once by pytorch-pretrained-biggan):
    python examples/biggan/adapt_biggan_deep.py --data my-flowers/ --images 50 --ratio 4 --steps 3000
    # offline smoke run with a tiny random BigGAN-deep:
    python examples/biggan/adapt_biggan_deep.py --random-weights --tiny --ratio 1 --steps 3 \
        --out /tmp/biggan-smoke
    # only the parameter table (ratio 1 / 2 / 4 / 8 / no grouping at 128 px):
    python examples/biggan/adapt_biggan_deep.py --table-only

A generator of ajbrock/BigGAN-PyTorch (its `ccbn(x, y)` layers are sites) loads through
`ajbrock_loader.py` beside this file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import gan_adapters as ga
from gan_adapters.images import make_grid, save_png
from gan_adapters.training.latents import interpolate

EMOJI = Path(__file__).resolve().parents[1] / "data" / "emoji-faces"
TINY = {"channel_width": 4, "z_dim": 8, "class_embed_dim": 8, "num_classes": 10}
console = Console()


def parameter_table() -> Table:
    """Adapter parameters of every research row on the full BigGAN-deep-128 (built on 'meta')."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    with torch.device("meta"):
        model = BigGAN(BigGANConfig())
    rows = [("ssa (Noguchi-Harada)", dict(kind="ssa"))]
    rows += [(f"apgc ratio {r}", dict(kind="apgc", ratio=r)) for r in (1, 2, 4, 8)]
    rows += [("apc (no grouping)", dict(kind="apc"))]
    table = Table(
        "method", "sites", "adapter parameters", "ratio vs ssa", title="BigGAN-deep-128, conditional BN sites"
    )
    for label, options in rows:
        # The 40 block norms are class-conditional; the output norm is excluded as in the paper.
        adapted = ga.inject(model, targets=r"generator\.layers\.\d+\.bn_\d", **options)
        report = ga.summary(adapted)
        table.add_row(label, str(len(report.rows)), f"{report.adapter_parameters:,}", f"{report.ratio:.3g}")
        model = ga.unload(adapted)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=EMOJI)
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--ratio", type=float, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--random-weights", action="store_true", help="no download: random weights")
    parser.add_argument("--tiny", action="store_true", help="with --random-weights: a 4-channel-wide model")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/biggan-deep"))
    args = parser.parse_args()

    console.print(parameter_table())
    if args.table_only:
        return
    options = {"random_weights": True, **(TINY if args.tiny else {})} if args.random_weights else {}
    config = ga.TrainConfig(
        data=str(args.data),
        images=args.images,
        model="biggan-deep-128",
        model_options=options,
        adapter=ga.AdapterConfig(kind="apgc", ratio=args.ratio, targets=[r"generator\.layers\.\d+\.bn_\d"]),
        steps=args.steps,
        batch_size=min(25, args.images),
        lr=args.lr,
        sample_every=max(1, args.steps // 5),
        checkpoint_every=max(1, args.steps // 5),
    )
    ga.train(config, args.out, overwrite=True)

    run = ga.load_run(args.out)
    z = ga.draw_latents(run, 16, prior="fitted", seed=0)
    samples = ga.generate(run, z)
    strip = ga.generate(run, interpolate(z[0], z[1], 8))
    save_png(make_grid(samples, columns=8), args.out / "example-samples.png")
    save_png(make_grid(strip, columns=8), args.out / "example-interpolation.png")
    console.print(f"learned class embedding, adapters and latents: {args.out / 'adapters.safetensors'}")
    console.print(
        f"samples: {args.out / 'example-samples.png'}; "
        f"interpolation: {args.out / 'example-interpolation.png'}"
    )


if __name__ == "__main__":
    main()
