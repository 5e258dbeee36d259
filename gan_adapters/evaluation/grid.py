"""A sweep recipe as data: the domains, the methods (table rows), the grid, tuning and evaluation.

A sweep recipe (TOML) holds a `[base]` training recipe, `[[domains]]` (image folders, the real
set each is scored against, held-out validation images), `[[methods]]` (adapter configs with the
training settings they change), a `[grid]` of `images` and `seeds`, `[tuning]` and `[eval]`.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_adapters.errors import ConfigError
from gan_adapters.evaluation.evaluator import EvalConfig
from gan_adapters.files import read_toml
from gan_adapters.serial import Serialisable
from gan_adapters.surgery import AdapterConfig
from gan_adapters.training.data import IMAGE_SUFFIXES
from gan_adapters.training.recipe import TrainConfig


@dataclass
class Domain(Serialisable):
    """A target domain: the training images, the real set its samples are scored against, and
    held-out images (never scored) on which learning rates are tuned."""

    config_name = "domain"

    name: str
    data: str
    real: str | None = None
    """A folder; None: `data` itself; "untrained": the images of `data` a cell did not train on
    (training takes the first N by name, scoring the rest)."""
    validation: str | None = None

    def scored_set(self, images: int) -> tuple[str, int]:
        """(folder, how many of its first images, by name, to leave out) a cell of `images` is scored on."""
        if self.real == UNTRAINED:
            return self.data, images
        return self.real or self.data, 0


UNTRAINED = "untrained"
MIN_SCORED = 5
"""Fewer held-out images than this and a cell of an "untrained" domain is not run: it cannot be scored."""


def count_images(folder: str) -> int:
    """How many image files a folder holds (by suffix; nothing is decoded)."""
    return sum(1 for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


ORDERS = {
    "by-domain": ("domain", "images", "seed", "method"),
    "by-seed": ("seed", "domain", "images", "method"),
    "by-size": ("images", "seed", "domain", "method"),
}
"""How each `[grid] order` nests the grid's axes, outermost first (the method is always innermost,
so a table's rows for one cell of the others finish together)."""
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"adapter", "data", "images", "seed"}


@dataclass
class Method:
    """One row of the research table: an adapter config, the training settings it changes
    (`recipe`, `lr`, `recon_weight`, ...), and optionally learning rates to tune among."""

    adapter: AdapterConfig
    label: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    lrs: list[float] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            defaults = type(self.adapter.settings)()
            sizes = {
                k: v
                for k, v in self.adapter.settings.to_dict().items()
                if v != getattr(defaults, k) and isinstance(v, int | float) and not isinstance(v, bool)
            }
            recipe = self.train.get("recipe", "supervised")
            blend = f"{self.train['recon_weight']:g}" if self.train.get("recon_weight") else ""
            prefix = "" if recipe == "supervised" else ("blended" + blend if blend else "adversarial") + "-"
            what = "full" if self.train.get("method") == "full" else self.adapter.kind
            self.label = (
                prefix + what + ("" if what == "full" else "".join(f"-{k}{v:g}" for k, v in sizes.items()))
            )

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Method:
        """A `[[methods]]` table: training keys, `label`, `lrs`, and the adapter's keys."""
        entry = dict(entry)
        label, lrs = entry.pop("label", ""), entry.pop("lrs", None)
        train = {k: entry.pop(k) for k in list(entry) if k in TRAIN_FIELDS}
        return cls(AdapterConfig.from_dict(entry), label, train, list(lrs) if lrs else None)


@dataclass
class Tuning(Serialisable):
    """How learning rates are tuned: short runs on `images` training images at `seed`, scored
    by KID against the domain's validation images (never against the scored real set)."""

    config_name = "tuning"

    images: int = 25
    seed: int = 100
    steps: int | None = None
    """Steps per tuning run; None: half the base recipe's."""
    samples: int = 50
    domain: str | None = None
    """Tune each row once, on this domain's validation images, and use its rates for every domain
    (a row's rate, as the field's tables tune); None: every domain tunes its own."""

    def tuned(self, domains: list[Domain]) -> list[Domain]:
        """The domains whose validation images tune the rates."""
        return [d for d in domains if self.domain in (None, d.name)]


@dataclass
class SweepConfig:
    """A whole sweep, as read from its recipe."""

    base: TrainConfig
    domains: list[Domain]
    methods: list[Method]
    images: list[int] = field(default_factory=lambda: [25, 50, 100])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    eval: EvalConfig = field(default_factory=EvalConfig)
    tuning: Tuning = field(default_factory=Tuning)
    order: str = "by-domain"
    """`by-domain`: a domain's every cell, then the next domain's. `by-seed`: seed 0 of every
    domain first, then seed 1, ...: a sweep cut short (a GPU window) covers every domain."""

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepConfig:
        """Read a sweep recipe; relative folders are relative to the recipe file."""
        path = Path(path)
        data = read_toml(path, "sweep recipe")
        unknown = sorted(set(data) - {"base", "domains", "methods", "grid", "eval", "tuning"})
        if unknown:
            raise ConfigError(f"unknown sweep recipe sections: {', '.join(unknown)}")

        def resolve(folder: str | None) -> str | None:
            return folder if folder in (None, UNTRAINED) else str((path.parent / folder).resolve())

        domains = [Domain.from_dict(d) for d in data.get("domains", [])]
        for domain in domains:
            domain.data, domain.real, domain.validation = map(
                resolve, (domain.data, domain.real, domain.validation)
            )
        grid = data.get("grid", {})
        config = cls(
            base=TrainConfig.from_dict(data.get("base", {})),
            domains=domains,
            methods=[Method.from_entry(entry) for entry in data.get("methods", [])],
            images=list(grid.get("images", [25, 50, 100])),
            seeds=list(grid.get("seeds", [0, 1, 2])),
            eval=EvalConfig.from_dict(data.get("eval", {})),
            tuning=Tuning.from_dict(data.get("tuning", {})),
            order=grid.get("order", "by-domain"),
        )
        if config.order not in ORDERS:
            raise ConfigError(f"[grid] order must be one of {', '.join(ORDERS)}, got {config.order!r}")
        if not config.domains or not config.methods:
            raise ConfigError(f"{path} needs at least one [[domains]] and one [[methods]] entry")
        names = [d.name for d in config.domains]
        if config.tuning.domain is not None and config.tuning.domain not in names:
            raise ConfigError(
                f"[tuning] domain = {config.tuning.domain!r} is none of the sweep's domains: {', '.join(names)}"
            )
        for method in config.methods:
            if method.lrs and any(d.validation is None for d in config.tuning.tuned(config.domains)):
                raise ConfigError(
                    f"method {method.label!r} tunes lrs: every domain that tunes needs validation = FOLDER"
                )
        return config

    def unscorable(self) -> list[tuple[Domain, int, int]]:
        """(domain, images, held-out images left) of the sizes an "untrained" domain cannot score."""
        counts = {d.name: count_images(d.data) for d in self.domains if d.real == UNTRAINED}
        return [
            (d, n, counts[d.name] - n)
            for d in self.domains
            for n in self.images
            if d.name in counts and counts[d.name] - n < MIN_SCORED
        ]

    def cells(self) -> list[tuple[Domain, Method, int, int]]:
        """Every (domain, method, images, seed) that can be scored, in the order they run."""
        left_out = {(d.name, n) for d, n, _ in self.unscorable()}
        axes = {"domain": self.domains, "method": self.methods, "images": self.images, "seed": self.seeds}
        nesting = ORDERS[self.order]
        cells = []
        for values in itertools.product(*(axes[axis] for axis in nesting)):
            at = dict(zip(nesting, values, strict=True))
            cells.append((at["domain"], at["method"], at["images"], at["seed"]))
        return [c for c in cells if (c[0].name, c[2]) not in left_out]
