"""StyleGAN2 has no batch norm: adapt the outputs of its modulated convolutions via `targets=`.

Runnable path: lucidrains' StyleGAN2 from PyPI (`stylegan2-pytorch`), random weights or a
generator state dict you trained with it. Adapters go after each block's two `Conv2DMod`
layers (not the 3-channel to_rgb ones), then fine-tune on 25 images and sample.

    python examples/stylegan2/adapt_stylegan2.py --steps 400 --out runs/stylegan2-emoji
    python examples/stylegan2/adapt_stylegan2.py --steps 3 --image-size 32 --out /tmp/smoke

NVlabs stylegan2-ada / stylegan3 pickles: see `nvlabs_loader.py` beside this file (sites are
the `SynthesisLayer` modules).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gan_adapters as ga
from gan_adapters.images import make_grid, save_png

EMOJI = Path(__file__).resolve().parents[1] / "data" / "emoji-faces"
MOD_CONVS = r"blocks\.\d+\.conv[12]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=EMOJI)
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--checkpoint", type=Path, help="a state dict of the lucidrains Generator")
    parser.add_argument("--out", type=Path, default=Path("runs/stylegan2"))
    args = parser.parse_args()

    bundle = ga.load_generator("stylegan2-lucidrains", image_size=args.image_size)
    print(ga.summary(ga.inject(bundle.model, kind="apgc", ratio=2, targets=MOD_CONVS)))
    config = ga.TrainConfig(
        data=str(args.data),
        images=args.images,
        model="stylegan2-lucidrains",
        model_options={"image_size": args.image_size},
        base_checkpoint=str(args.checkpoint) if args.checkpoint else None,
        adapter=ga.AdapterConfig(kind="apgc", ratio=2, targets=[MOD_CONVS]),
        steps=args.steps,
        lr=3e-3,
        latent_init="prior",
        sample_every=max(1, args.steps // 4),
        checkpoint_every=max(1, args.steps // 4),
    )
    ga.train(config, args.out, overwrite=True)
    run = ga.load_run(args.out)
    images = ga.generate(run, ga.draw_latents(run, 16, prior="fitted", seed=0))
    print(f"samples: {save_png(make_grid(images, columns=8), args.out / 'example-samples.png')}")


if __name__ == "__main__":
    main()
