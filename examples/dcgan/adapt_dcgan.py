"""The embedded default in code: adapt the pretrained face DCGAN to 25 emoji faces.

python examples/dcgan/adapt_dcgan.py --steps 800 --out runs/dcgan-emoji
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gan_adapters as ga
from gan_adapters.images import make_grid, save_png

EMOJI = Path(__file__).resolve().parents[1] / "data" / "emoji-faces"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("runs/dcgan-emoji"))
    args = parser.parse_args()

    # 1. The recipe: which generator, which adapters, which images (docs/training.md).
    config = ga.TrainConfig(
        data=str(EMOJI),
        images=args.images,
        model="dcgan-faces",
        adapter=ga.AdapterConfig(kind="apgc", ratio=8),
        steps=args.steps,
        lr=3e-3,
        lr_decay_every=max(1, args.steps * 5 // 8),
        latent_init="prior",
        sample_every=max(1, args.steps // 4),
        checkpoint_every=max(1, args.steps // 4),
    )
    # 2. Fine-tune: only the adapters and the per-image latents train.
    ga.train(config, args.out, overwrite=True)
    # 3. Reload the result like a user would, and draw 16 new emoji.
    run = ga.load_run(args.out)
    images = ga.generate(run, ga.draw_latents(run, 16, prior="fitted", seed=0))
    grid = save_png(make_grid(images, columns=8), args.out / "example-samples.png")
    print(ga.summary(run.bundle.model))
    print(f"adapter file: {args.out / 'adapters.safetensors'}\nsamples: {grid}")


if __name__ == "__main__":
    main()
