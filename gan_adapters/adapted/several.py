"""Several adapted domains on one base generator: load them side by side, use one or a blend.

Each run (or adapter file) becomes one named adapter on a single copy of the base; a
class-conditional run's learned class embedding travels with its domain and is blended with the
same weights as its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gan_adapters.adapted.run import AdaptedRun, load_run, run_files
from gan_adapters.errors import ConfigError, MismatchError
from gan_adapters.surgery import blend, delete_adapter, load_adapters, read_extras, require_state, set_adapter
from gan_adapters.training.embedding import LearnedEmbedding

BLENDED = "blended"
"""The adapter name `use_domains` gives a blend (replaced by the next one)."""


@dataclass
class Domains:
    """Named domains on one base: `runs[name]` shares the one adapted bundle, with its own latents
    and recipe (for its prior) and its own learned class embedding, if any."""

    runs: dict[str, AdaptedRun]
    embeddings: dict[str, torch.Tensor | None]

    @property
    def names(self) -> list[str]:
        """Domain names, in the order given."""
        return list(self.runs)


def domain_name(source: Path, taken: set[str]) -> str:
    """A run folder's name or an adapter file's stem, made unique and usable as an adapter name."""
    stem = (source.name if source.is_dir() else source.stem).replace(".", "-").lstrip("_") or "domain"
    name, count = stem, 2
    while name in taken or name == BLENDED:
        name, count = f"{stem}-{count}", count + 1
    return name


def load_domains(
    sources: list[Path], model: str | None = None, *, trust_code: bool = False, **model_options
) -> Domains:
    """Load several runs (or adapter files, with `model`) adapted from one base onto one copy of it.
    Runs whose recipes name other bases, or whose sites differ, are refused with the difference."""
    names: list[str] = []
    for source in sources:
        names.append(domain_name(Path(source), set(names)))
    first = load_run(sources[0], model, trust_code=trust_code, adapter_name=names[0], **model_options)
    bundle = first.bundle
    runs, embeddings = {names[0]: first}, {names[0]: _embedding(first)}
    for name, source in zip(names[1:], sources[1:], strict=True):
        adapter_file, config = run_files(Path(source), model, trust_code)
        if (
            model is None
            and first.config is not None
            and config is not None
            and config.model != first.config.model
        ):
            raise MismatchError(
                f"{source} adapts {config.model!r} but {sources[0]} adapts {first.config.model!r}: "
                "domains blend only on one base"
            )
        extras = read_extras(adapter_file)
        bundle.model = load_adapters(bundle.model, adapter_file, name, example_inputs=bundle.example_inputs())
        runs[name] = AdaptedRun(bundle, extras.get("latents"), config, first.load_base)
        embeddings[name] = extras.get("class_embedding") if bundle.class_embedding else None
    bundle.model.eval()
    return Domains(runs, embeddings)


def _embedding(run: AdaptedRun) -> torch.Tensor | None:
    if not run.bundle.class_embedding:
        return None
    learned = run.bundle.model.get_submodule(run.bundle.class_embedding)
    return learned.embedding.detach().clone() if isinstance(learned, LearnedEmbedding) else None


def parse_weights(text: str, names: list[str]) -> dict[str, float]:
    """'faces:0.5,animals:0.5' as {name: weight}, refusing unknown names and non-numbers."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, colon, value = part.rpartition(":")
        if not colon:
            raise ConfigError(f"--blend takes NAME:WEIGHT pairs; {part!r} has no weight (say {part}:0.5)")
        if name in weights:
            raise ConfigError(f"--blend names {name!r} twice; give each domain one weight")
        if name not in names:
            raise ConfigError(
                f"--blend names {name or part!r}, not one of the domains given: {', '.join(names)}"
            )
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"--blend weight for {name!r} is {value!r}, not a number") from None
    if not weights:
        raise ConfigError("--blend needs NAME:WEIGHT pairs, e.g. faces:0.5,animals:0.5")
    return weights


def use_domains(domains: Domains, weights: dict[str, float]) -> AdaptedRun:
    """Make the model generate one domain ({name: 1}) or a blend of several (adapters and class
    embeddings mixed with the same weights); returns the run to draw latents for."""
    first = next(iter(weights))
    model = domains.runs[first].bundle.model
    if BLENDED in require_state(model).adapters:
        model = delete_adapter(model, BLENDED)
    if list(weights.values()) == [1.0]:
        set_adapter(model, first)
    else:
        model = blend(model, weights, name=BLENDED)
    for run in domains.runs.values():
        run.bundle.model = model
    embeddings = {k: domains.embeddings[k] for k in weights}
    if all(e is not None for e in embeddings.values()):
        learned = model.get_submodule(domains.runs[first].bundle.class_embedding)
        with torch.no_grad():
            learned.embedding.copy_(sum(w * embeddings[k] for k, w in weights.items()))
    return domains.runs[first]
