"""A learned class embedding for fine-tuning a class-conditional generator on one new domain.

Noguchi & Harada replace the pretrained class-embedding table by one learned vector,
initialised to the mean of the pretrained embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_adapters.errors import GeneratorError, MismatchError
from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.surgery.rewrite import swap_submodule


class LearnedEmbedding(nn.Module):
    """One learned class embedding standing in for a class-conditional generator's table."""

    def __init__(self, initial: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Parameter(initial.detach().clone())

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(classes.shape[0], -1)


def mean_embedding(module: nn.Module) -> torch.Tensor:
    """The mean of a pretrained class-embedding table (nn.Embedding or a bias-free nn.Linear)."""
    if isinstance(module, nn.Embedding):
        return module.weight.mean(0)
    if isinstance(module, nn.Linear):
        return module.weight.mean(1)
    raise GeneratorError(f"cannot read class embeddings from a {type(module).__name__}")


def replace_class_embedding(bundle: GeneratorBundle, initial: torch.Tensor | None = None) -> LearnedEmbedding:
    """Swap the bundle's class-embedding module for one learned embedding (default: the mean)."""
    original = bundle.model.get_submodule(bundle.class_embedding)
    mean = mean_embedding(original)
    if initial is not None and initial.shape != mean.shape:
        raise MismatchError(
            f"a learned class embedding of shape {tuple(initial.shape)} does not fit {bundle.name}, "
            f"whose class embeddings have shape {tuple(mean.shape)}"
        )
    learned = LearnedEmbedding(mean if initial is None else initial.to(mean.dtype))
    swap_submodule(bundle.model, bundle.class_embedding, learned.to(next(original.parameters()).device))
    return learned
