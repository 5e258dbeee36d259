"""Pretrain the BigGAN of `zoo.biggan` on a class-labelled image tensor (the Noto emoji set).

Hinge loss, spectral norm, an EMA of the generator, DiffAugment (colour, translation,
cutout: 3,600 images is small for a GAN), Adam (G 1e-4, D 4e-4, betas (0, 0.999)); resumable
from an atomic checkpoint; stops at a step count or a time budget. The EMA generator is what
ships: fp16 safetensors beside a JSON config.

    python -m gan_adapters.zoo.pretrain --data data/emoji-64-train.safetensors --out runs/biggan-emoji \\
        --ch 32 --batch-size 128 --minutes 9 --precision bf16 --report
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from gan_adapters.runs import read_checkpoint, write_checkpoint
from gan_adapters.saving import write_atomically
from gan_adapters.zoo.biggan import BigGANConfig, BigGANDiscriminator, BigGANGenerator


@dataclass
class PretrainConfig:
    """A pretraining run."""

    model: BigGANConfig = field(default_factory=BigGANConfig)
    batch_size: int = 64
    steps: int = 100_000
    minutes: float | None = None
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    ema_decay: float = 0.999
    ema_start: int = 1000
    augment: str = "color,translation,cutout"
    precision: str = "no"
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 1000


def load_image_tensor(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """images uint8 (N, 3, H, W), labels int64 (N,), class names: render_emoji.py --tensor."""
    path = Path(path)
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        classes = json.loads((handle.metadata() or {}).get("classes", "[]"))
    return tensors["images"], tensors["labels"].long(), classes


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable, applied alike to real and fake images."""
    n = x.shape[0]

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(x.device, x.dtype)

    for op in filter(None, policy.split(",")):
        if op == "color":
            x = x + (rand(n, 1, 1, 1) - 0.5)
            mean = x.mean(1, keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
        elif op == "translation":
            shift = (rand(n, 2) * 2 - 1) * 0.25  # up to 1/8 of the image (grid coordinates span 2)
            theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, :, 2] = shift
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        elif op == "cutout":
            h, w = x.shape[2:]
            size = (h // 2, w // 2)
            top = (rand(n, 1, 1) * (h - size[0] + 1)).long()
            left = (rand(n, 1, 1) * (w - size[1] + 1)).long()
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            hole = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
            x = x * (~hole).unsqueeze(1).to(x.dtype)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r} (color, translation, cutout)")
    return x


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model, parameters and buffers."""
    for target, source in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if target.is_floating_point():
            target.lerp_(source, 1 - decay)
        else:
            target.copy_(source)


def save_generator(generator: nn.Module, config: BigGANConfig, path: Path, card: dict | None = None) -> Path:
    """The generator as fp16 safetensors, its config (and model card) in the metadata."""
    tensors = {k: v.detach().half().contiguous().cpu() if v.is_floating_point() else v.cpu()
               for k, v in generator.state_dict().items()}  # fmt: skip
    metadata = {"config": json.dumps(config.to_dict()), "card": json.dumps(card or {})}
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_generator_file(path: str | Path) -> tuple[BigGANGenerator, dict]:
    """A generator saved by `save_generator`, in float32 and eval mode, and its model card."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    generator = BigGANGenerator(BigGANConfig(**json.loads(metadata["config"])))
    generator.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    )
    return generator.eval(), json.loads(metadata.get("card", "{}"))


def pretrain(
    config: PretrainConfig, data: str | Path, out: str | Path, *, resume: bool = False, on_step=None
) -> dict:
    """Train G and D; write out/checkpoint.pt, out/generator-ema.safetensors; return a summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    images, labels, classes = load_image_tensor(data)
    config.model.num_classes = max(config.model.num_classes, int(labels.max()) + 1)
    images = images.to(device)
    labels = labels.to(device)
    generator = BigGANGenerator(config.model).to(device)
    discriminator = BigGANDiscriminator(config.model).to(device)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    g_opt = torch.optim.Adam(generator.parameters(), config.g_lr, betas=(0.0, 0.999), eps=1e-6)
    d_opt = torch.optim.Adam(discriminator.parameters(), config.d_lr, betas=(0.0, 0.999), eps=1e-6)
    start = 0
    checkpoint_path = out / "checkpoint.pt"
    if resume:
        state = read_checkpoint(checkpoint_path)
        for module, key in ((generator, "generator"), (discriminator, "discriminator"), (ema, "ema"),
                            (g_opt, "g_opt"), (d_opt, "d_opt")):  # fmt: skip
            module.load_state_dict(state[key])
        start = int(state["step"])
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    began, losses, step = time.monotonic(), {}, start
    for step in range(start, config.steps):
        if config.minutes is not None and time.monotonic() - began > 60 * config.minutes:
            break
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randint(len(images), (config.batch_size,), generator=gen).to(device)
        real = images[index].float() / 127.5 - 1
        y = labels[index]
        z = torch.randn(config.batch_size, config.model.z_dim, generator=gen).to(device)
        with torch.autocast(**autocast):
            fake = generator(z, y)
            d_real = discriminator(diff_augment(real, config.augment, gen), y)
            d_fake = discriminator(diff_augment(fake.detach(), config.augment, gen), y)
            d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        with torch.autocast(**autocast):
            g_loss = -discriminator(diff_augment(fake, config.augment, gen), y).mean()
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        update_ema(ema, generator, 0.0 if step < config.ema_start else config.ema_decay)
        losses = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if not all(math.isfinite(v) for v in losses.values()):
            raise FloatingPointError(
                f"losses became {losses} at step {step}; {checkpoint_path} holds the last good state"
            )
        done = step + 1
        if on_step is not None:
            on_step(done, config.steps, losses, time.monotonic() - began)
        if done % config.checkpoint_every == 0:
            _checkpoint(checkpoint_path, done, config, generator, discriminator, ema, g_opt, d_opt)
    finished = step + 1 if config.steps > start else start
    _checkpoint(checkpoint_path, finished, config, generator, discriminator, ema, g_opt, d_opt)
    seconds = time.monotonic() - began
    card = {"steps": finished, "seconds_this_run": seconds, "classes": classes, "images": len(images),
            "images_per_second": (finished - start) * config.batch_size / max(seconds, 1e-9), "final": losses}  # fmt: skip
    save_generator(ema, config.model, out / "generator-ema.safetensors", card)
    return card


@torch.no_grad()
def report(
    weights: str | Path, data: str | Path, out: str | Path, samples: int = 1000, per_class: int = 8
) -> dict:
    """KID/FID of the EMA generator against its training set, and a sample grid per class."""
    from gan_adapters.evaluation import EvalConfig, Evaluator
    from gan_adapters.images import make_grid, save_png

    out = Path(out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator, card = load_generator_file(weights)
    generator = generator.to(device)
    images, labels, classes = load_image_tensor(data)
    gen = torch.Generator().manual_seed(0)
    picked = labels[torch.randint(len(labels), (samples,), generator=gen)].to(device)
    z = torch.randn(samples, generator.config.z_dim, generator=gen).to(device)
    fakes = torch.cat(
        [generator(zc, yc).float().cpu() for zc, yc in zip(z.split(100), picked.split(100), strict=True)]
    )
    evaluator = Evaluator(cache=out / "feature-cache")
    scores = evaluator.score_images(fakes, images.float() / 127.5 - 1, EvalConfig(samples=samples))
    rows = []
    for index in range(len(classes) or int(labels.max()) + 1):
        y = torch.full((per_class,), index, device=device)
        rows.append(
            generator(torch.randn(per_class, generator.config.z_dim, generator=gen).to(device), y)
            .float()
            .cpu()
        )
    save_png(make_grid(torch.cat(rows), columns=per_class), out / "samples-per-class.png")
    result = {"kid_x1000": 1000 * scores.kid, "kid_std_x1000": 1000 * scores.kid_std, "fid": scores.fid,
              "generated": scores.generated, "real": scores.real, "classes": classes, "card": card}  # fmt: skip
    (out / "report.json").write_text(json.dumps(result, indent=2))
    return result


def _checkpoint(path, step, config, generator, discriminator, ema, g_opt, d_opt) -> None:
    write_checkpoint(path, {
        "step": step, "config": asdict(config), "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(), "ema": ema.state_dict(),
        "g_opt": g_opt.state_dict(), "d_opt": d_opt.state_dict(),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="safetensors from render_emoji.py --tensor")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--ch", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--precision", choices=("no", "bf16"), default="no")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--report", action="store_true", help="afterwards: KID/FID against the data, grid per class"
    )
    args = parser.parse_args()

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    config = PretrainConfig(model=BigGANConfig(resolution=args.resolution, ch=args.ch), batch_size=args.batch_size,
                            steps=args.steps, minutes=args.minutes, precision=args.precision)  # fmt: skip
    columns = (
        TextColumn("pretraining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("pretrain", total=config.steps, info="")

        def on_step(step, total, losses, seconds):
            info = f"D {losses['d_loss']:.3f} G {losses['g_loss']:.3f} {step * config.batch_size / seconds:.0f} img/s"
            progress.update(task, completed=step, info=info)

        card = pretrain(config, args.data, args.out, resume=args.resume, on_step=on_step)
    print(json.dumps({k: v for k, v in card.items() if k != "classes"}, indent=2))
    if args.report:
        result = report(args.out / "generator-ema.safetensors", args.data, args.out)
        print(json.dumps({k: v for k, v in result.items() if k not in ("classes", "card")}, indent=2))


if __name__ == "__main__":
    main()
