"""How good a pretrained source model is: fidelity and diversity against its training set, a grid
per class."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gan_adapters.evaluation.evaluator import EvalConfig, Evaluator
from gan_adapters.generators.sources import load_generator_file, save_generator_file
from gan_adapters.images import make_grid, save_png
from gan_adapters.training.data import load_image_tensor


@torch.no_grad()
def score_source(
    generator: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    samples: int = 1000,
    real: int | None = None,
    evaluator: Evaluator | None = None,
    seed: int = 0,
) -> dict:
    """KID, FID, precision, recall, density and coverage of `samples` images of a class-conditional
    generator (classes drawn in the data's proportions) against `real` of its training images
    (uint8, drawn at random; all by default), both at the generator's own resolution."""
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    picked = labels[torch.randint(len(labels), (samples,), generator=gen)].to(device)
    z = torch.randn(samples, generator.config.z_dim, generator=gen).to(device)
    fakes = torch.cat(
        [generator(zc, yc).float().cpu() for zc, yc in zip(z.split(100), picked.split(100), strict=True)]
    )
    evaluator = evaluator or Evaluator()  # the user cache: never inside a folder that travels (a GPU carry)
    chosen = torch.randperm(len(images), generator=gen)[:real] if real is not None else slice(None)
    scores = evaluator.score_images(fakes, images[chosen].float() / 127.5 - 1, EvalConfig(samples=samples))
    numbers = {"kid_x1000": 1000 * scores.kid, "kid_std_x1000": 1000 * scores.kid_std, "fid": scores.fid}
    numbers |= {name: getattr(scores, name) for name in ("precision", "recall", "density", "coverage")}
    rounded = {k: None if v is None else round(v, 3) for k, v in numbers.items()}  # None: too few to measure
    return rounded | {"generated": scores.generated, "real": scores.real}


@torch.no_grad()
def report(
    weights: str | Path,
    data: str | Path,
    out: str | Path,
    samples: int = 1000,
    per_class: int = 8,
    real: int | None = None,
    card: dict | None = None,
) -> dict:
    """The fidelity and diversity of the EMA generator against its training set (`score_source`)
    and a sample grid per class (out/samples-per-class.png); the numbers also go to
    out/report.json and into the weight file's model card (with the entries of `card`, say the
    images' licence), so a shipped file carries its scores."""
    out = Path(out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator, stored = load_generator_file(weights)
    generator = generator.to(device)
    images, labels, classes = load_image_tensor(data)
    numbers = score_source(generator, images, labels, samples, real)
    gen = torch.Generator().manual_seed(1)
    rows = []
    for index in range(len(classes) or int(labels.max()) + 1):
        y = torch.full((per_class,), index, device=device)
        z = torch.randn(per_class, generator.config.z_dim, generator=gen).to(device)
        rows.append(generator(z, y).float().cpu())
    save_png(make_grid(torch.cat(rows), columns=per_class), out / "samples-per-class.png")
    card = stored | (card or {}) | {"report": numbers}
    save_generator_file(generator.cpu(), Path(weights), card)
    result = numbers | {"classes": classes, "card": card}
    (out / "report.json").write_text(json.dumps(result, indent=2))
    return result
