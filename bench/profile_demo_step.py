"""Where does a fine-tuning step of the demo spend its time on the CPU?

Times the parts of one step of `recipes/demo-emoji-faces.toml` (face DCGAN with apgc ratio 8,
25 images of 64 px, EfficientNet-Lite0 perceptual loss) separately, in both memory formats,
and a whole training run's steps per second in each (the trainer defaults to channels_last).

    python bench/profile_demo_step.py --reps 10 --out bench/profile-demo-cpu.md
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import gan_adapters as ga
from gan_adapters.training.data import load_image_folder
from gan_adapters.training.latents import chamfer_to_prior
from gan_adapters.training.perceptual import build_perceptual

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo-emoji-faces.toml"


def median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


def parts(memory_format: torch.memory_format, reps: int, fold: str = "exact") -> dict[str, float]:
    config = ga.TrainConfig.from_toml(RECIPE)
    bundle = ga.load_generator(config.model)
    model = ga.inject(bundle.model, config=config.adapter).to(memory_format=memory_format)
    ga.set_execution(model, fold=fold)
    data = load_image_folder(config.data, 64, 25)
    targets = data.images.contiguous(memory_format=memory_format)
    perceptual = build_perceptual(config.perceptual).to(memory_format=memory_format)
    features = perceptual.target_features(targets)
    latents = torch.randn(25, 100, 1, 1, requires_grad=True)
    prior = torch.randn(250, 100, 1, 1)

    def generator_forward():
        with torch.no_grad():
            model(latents)

    def generator_step():
        F.l1_loss(model(latents), targets).backward()

    def perceptual_step():
        fake = model(latents).detach().requires_grad_(True)
        perceptual(fake, features).backward()

    def whole_step():
        fake = model(latents)
        (
            F.l1_loss(fake, targets) + perceptual(fake, features) + 0.1 * chamfer_to_prior(latents, prior)
        ).backward()

    return {
        "generator forward": median_ms(generator_forward, reps),
        "generator forward+backward (L1)": median_ms(generator_step, reps),
        "perceptual forward+backward": median_ms(perceptual_step, reps),
        "latent regulariser forward+backward": median_ms(
            lambda: (0.1 * chamfer_to_prior(latents, prior)).backward(), reps
        ),
        "whole loss forward+backward": median_ms(whole_step, reps),
    }


def steps_per_second(steps: int, channels_last: bool) -> float:
    config = ga.TrainConfig.from_toml(RECIPE)
    config.steps, config.sample_every, config.checkpoint_every = steps, steps, steps
    config.channels_last = channels_last
    with tempfile.TemporaryDirectory() as folder:
        result = ga.train(config, folder)
    return steps / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("bench/profile-demo-cpu.md"))
    args = parser.parse_args()
    contiguous = parts(torch.contiguous_format, args.reps)
    channels_last = parts(torch.channels_last, args.reps)
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.reps}",
        "",
        "| part of a demo step | contiguous ms | channels_last ms |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {contiguous[k]:.1f} | {channels_last[k]:.1f} |" for k in contiguous]
    lines += [
        "",
        "| channels_last, `fold` | generator forward ms | generator forward+backward (L1) ms |",
        "|---|---|---|",
    ]
    for fold in ("exact", "fast", "always"):
        folded = channels_last if fold == "exact" else parts(torch.channels_last, args.reps, fold)
        lines.append(
            f"| {fold} | {folded['generator forward']:.1f} "
            f"| {folded['generator forward+backward (L1)']:.1f} |"
        )
    lines += ["", "| whole training loop | steps/s |", "|---|---|"]
    for channels_last in (False, True):
        lines.append(f"| channels_last={channels_last} | {steps_per_second(args.steps, channels_last):.2f} |")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
