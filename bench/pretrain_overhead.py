"""How close the pretraining loop runs to its model: `gan-adapters pretrain`'s loop against a minimal
hand-written loop of the same networks, data, batch and augmentation, in one process, alternating
rounds so that whatever else the machine does weighs on both alike. Prints images/s of each and
their ratio (the aim: the project's loop within 1.2x of the minimal one).

    python bench/pretrain_overhead.py --steps 60 --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_adapters.pretraining.config import PretrainConfig
from gan_adapters.pretraining.loop import pretrain
from gan_adapters.pretraining.state import update_ema
from gan_adapters.training.augment import diff_augment
from gan_adapters.training.data import load_image_tensor

ROOT = Path(__file__).resolve().parents[1]


def minimal_loop(config: PretrainConfig, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    """Images/s of the bare loop: hinge loss, DiffAugment, Adam, EMA; nothing else."""
    from gan_adapters.generators.sources import source_architecture

    architecture = source_architecture(config.architecture)
    generator, discriminator = architecture.generator(config.model), architecture.discriminator(config.model)
    ema = copy.deepcopy(generator).requires_grad_(False)
    g_opt = torch.optim.Adam(generator.parameters(), config.g_lr, betas=(config.beta1, 0.999), eps=1e-6)
    d_opt = torch.optim.Adam(discriminator.parameters(), config.d_lr, betas=(config.beta1, 0.999), eps=1e-6)
    began = time.perf_counter()
    for _ in range(steps):
        index = torch.randint(len(images), (config.batch_size,))
        real, y = images[index].float() / 127.5 - 1, labels[index]
        fake = generator(torch.randn(config.batch_size, config.model.z_dim), y)
        d_loss = F.relu(1 - discriminator(diff_augment(real, config.augment), y)).mean()
        d_loss = d_loss + F.relu(1 + discriminator(diff_augment(fake.detach(), config.augment), y)).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        g_loss = -discriminator(diff_augment(fake, config.augment), y).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        update_ema(ema, generator, config.ema_decay)
    return steps * config.batch_size / (time.perf_counter() - began)


def project_loop(config: PretrainConfig, data: Path, steps: int) -> float:
    """Images/s of `pretrain` itself (seeded draws, loss reads, the EMA; no checkpoint inside the steps)."""
    with tempfile.TemporaryDirectory() as scratch:
        run = PretrainConfig.from_dict(config.to_dict() | {"steps": steps, "checkpoint_every": 10 * steps})
        return pretrain(run, data, Path(scratch) / "run")["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "emoji-32-train.safetensors")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--discriminator", default="own")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = PretrainConfig(model={"resolution": 32, "ch": 32}, discriminator=args.discriminator, ema_start=0)
    images, labels, classes = load_image_tensor(args.data)
    config.model.num_classes = len(classes)
    if args.discriminator != "own":
        raise SystemExit("the minimal loop builds the architecture's own discriminator only")
    mine, bare = [], []
    for round_ in range(args.rounds):  # the order alternates: neither loop always runs warm
        if round_ % 2:
            bare.append(minimal_loop(config, images, labels, args.steps))
        mine.append(project_loop(config, args.data, args.steps))
        if not round_ % 2:
            bare.append(minimal_loop(config, images, labels, args.steps))
    ours, theirs = statistics.median(mine), statistics.median(bare)
    print(
        f"pretrain loop {ours:.1f} images/s, minimal loop {theirs:.1f} images/s: {theirs / ours:.2f}x "
        f"(median of {args.rounds} rounds of {args.steps} steps, batch {config.batch_size}, "
        f"{args.threads} threads; rounds: {[round(v, 1) for v in mine]} vs {[round(v, 1) for v in bare]})"
    )


if __name__ == "__main__":
    main()
