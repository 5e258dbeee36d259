"""`gan-adapters sample` and `interpolate`: images from one adapted domain, several, or a blend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
import typer

from gan_adapters.cli.config_options import ranged
from gan_adapters.cli.options import ModelName, OutFolder, Prior, Seed, Sigma, Truncation, TrustCode, console
from gan_adapters.errors import GanAdaptersError

Runs = Annotated[
    list[Path],
    typer.Argument(
        metavar="RUN...",
        help="Run folders, or adapter .safetensors files (then --model); several: domains on one base.",
    ),
]


def _default_out(run_path: Path, name: str) -> Path:
    return (run_path if run_path.is_dir() else run_path.parent) / name


def sample(  # long: typer declares each option as a parameter; the body is short
    runs: Runs,
    count: Annotated[int, ranged("--count", "-n", help="How many images (per domain).", minimum=1)] = 16,
    prior: Prior = "auto",
    sigma: Sigma = None,
    truncation: Truncation = None,
    seed: Seed = 0,
    model: ModelName = None,
    trust_code: TrustCode = False,
    columns: Annotated[int, ranged("--columns", help="Images per row of the grid.", minimum=1)] = 8,
    blend: Annotated[
        str | None,
        typer.Option(
            help="Sample one blend of the domains given, NAME:WEIGHT,... (NAME: a run folder's name or a "
            "file's stem). Weights need not sum to 1: faces:0.5 alone is half of faces' change."
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Also write compare.png: the base generator's own samples above the adapted ones.",
        ),
    ] = False,
    out: OutFolder = None,
) -> None:
    """Draw random images from an adapted generator: N PNGs and a grid.

    Several RUNs adapted from one base: one grid row per domain (the same seed for each), and
    each domain's PNGs in a folder of its name. With --blend: the blended domain.

    Example: gan-adapters sample runs/emoji -n 32   (or --prior normal --sigma 0.5, the paper's protocol)

    Example: gan-adapters sample runs/faces runs/animals --blend faces:0.5,animals:0.5
    """
    from gan_adapters.adapted.run import draw_latents, generate, resolve_prior
    from gan_adapters.adapted.several import load_domains, parse_weights, use_domains
    from gan_adapters.images import make_grid, save_images, save_png

    domains = load_domains(runs, model, trust_code=trust_code)
    if blend is not None:
        groups = {"blend": parse_weights(blend, domains.names)}
    else:
        groups = {name: {name: 1.0} for name in domains.names}
    tag = "blend" if blend is not None else "domains" if len(runs) > 1 else None
    rows, run = [], None
    for name, weights in groups.items():
        run = use_domains(domains, weights)
        resolved = resolve_prior(run, prior)
        images = generate(run, draw_latents(run, count, resolved, sigma, truncation, seed))
        folder = out or _default_out(runs[0], f"samples-{tag or resolved}-seed{seed}")
        files = save_images(images, folder if len(groups) == 1 else folder / name)
        console.print(f"{name}: {len(files)} images ({resolved} prior) in {files[0].parent}")
        rows.append(images if len(groups) == 1 else images[:columns])
    grid = save_png(make_grid(torch.cat(rows), columns), folder / "grid.png")
    console.print(f"grid{' (a row per domain)' if len(rows) > 1 else ''}: {grid}")
    if compare:
        _compare(run, rows[-1][:columns], seed, columns, folder)


def _compare(run, shown: torch.Tensor, seed: int, columns: int, folder: Path) -> None:
    from gan_adapters.adapted.run import base_samples
    from gan_adapters.images import make_grid, save_png

    before = base_samples(run, len(shown), seed)
    path = save_png(make_grid(torch.cat([before, shown]), columns), folder / "compare.png")
    console.print(f"before (the base generator's own samples, its N(0, I) prior and classes) / after: {path}")


def interpolate(  # long: typer declares each option as a parameter; the body is short
    run_path: Annotated[
        Path | None,
        typer.Argument(metavar="RUN", help="A run folder, or an adapter .safetensors file (then --model)."),
    ] = None,
    frames: Annotated[int, ranged("--frames", help="Images along the path, ends included.", minimum=2)] = 10,
    between: Annotated[
        Literal["random", "training"],
        typer.Option(
            help="'random': two random latents; 'training': the learned latents of two training images."
        ),
    ] = "random",
    between_domains: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            help="Morph from domain A to domain B (two runs or adapter files on one base): the same latents, "
            "the blend weight going 0 to 1. Takes the place of RUN.",
            metavar="A B",
        ),
    ] = None,
    rows: Annotated[
        int, ranged("--rows", help="--between-domains: how many latents morph side by side.", minimum=1)
    ] = 4,
    prior: Prior = "auto",
    sigma: Sigma = None,
    truncation: Truncation = None,
    seed: Seed = 0,
    model: ModelName = None,
    trust_code: TrustCode = False,
    out: OutFolder = None,
) -> None:
    """Walk linearly between two latents, or morph one domain into another: a PNG strip and a GIF.

    Example: gan-adapters interpolate runs/emoji --frames 12

    Example: gan-adapters interpolate --between-domains runs/faces runs/animals --frames 24
    """
    from gan_adapters.images import make_grid, save_gif, save_png

    if (run_path is None) == (between_domains is None):
        raise GanAdaptersError("give either RUN (a walk between latents) or --between-domains A B (a morph)")
    if between_domains is not None:
        images = _morph(
            list(between_domains), frames, rows, prior, sigma, truncation, seed, model, trust_code
        )
        out = out or _default_out(between_domains[0], f"morph-{between_domains[1].stem}-seed{seed}")
        strip = save_png(make_grid(images.transpose(0, 1).flatten(0, 1), columns=frames), out / "strip.png")
        gif = save_gif(torch.cat(list(images.transpose(0, 1)), dim=3), out / "morph.gif")
    else:
        images = _walk(run_path, frames, between, prior, sigma, truncation, seed, model, trust_code)
        out = out or _default_out(run_path, f"interpolation-{between}-seed{seed}")
        strip = save_png(make_grid(images, columns=frames), out / "strip.png")
        gif = save_gif(images, out / "interpolation.gif")
    console.print(f"strip: {strip}\nanimation: {gif}")


def _walk(run_path, frames, between, prior, sigma, truncation, seed, model, trust_code) -> torch.Tensor:
    """(frames, 3, H, W) along a line between two latents."""
    from gan_adapters.adapted.run import draw_latents, generate, load_run
    from gan_adapters.training.latents import interpolate as lerp

    run = load_run(run_path, model, trust_code=trust_code)
    if between == "training":
        if run.latents is None or len(run.latents) < 2:
            raise GanAdaptersError("this adapter file holds no learned latents; use --between random")
        pick = torch.randperm(len(run.latents), generator=torch.Generator().manual_seed(seed))[:2]
        start, end = run.latents[pick[0]], run.latents[pick[1]]
    else:
        start, end = draw_latents(run, 2, prior, sigma, truncation, seed)
    return generate(run, lerp(start, end, frames))


def _morph(sources, frames, rows, prior, sigma, truncation, seed, model, trust_code) -> torch.Tensor:
    """(frames, rows, 3, H, W): the same latents (drawn as domain A's prior says) under blends
    {A: 1 - t, B: t} for t from 0 to 1."""
    from gan_adapters.adapted.run import draw_latents, generate
    from gan_adapters.adapted.several import load_domains, use_domains

    domains = load_domains(sources, model, trust_code=trust_code)
    first, second = domains.names
    latents = draw_latents(domains.runs[first], rows, prior, sigma, truncation, seed)
    steps = torch.linspace(0, 1, frames).tolist()
    return torch.stack([generate(use_domains(domains, {first: 1 - t, second: t}), latents) for t in steps])
