"""A learned class embedding for fine-tuning a class-conditional generator on one new domain.

Noguchi & Harada replace the pretrained class-embedding table by one learned vector,
initialised to the mean of the pretrained embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_adapters.errors import GeneratorError, MismatchError
from gan_adapters.generators.registry import GeneratorBundle
from gan_adapters.modules import swap_submodule


class LearnedEmbedding(nn.Module):
    """One learned class embedding standing in for a class-conditional generator's table."""

    def __init__(self, initial: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Parameter(initial.detach().clone())

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        return self.embedding.expand(classes.shape[0], -1)


def embedding_table(module: nn.Module) -> torch.Tensor:
    """A pretrained class-embedding table as (classes, dim): an nn.Embedding's weight, or a
    bias-free nn.Linear's (its inputs are one-hot classes)."""
    if isinstance(module, nn.Embedding):
        return module.weight
    if isinstance(module, nn.Linear):
        return module.weight.T
    raise GeneratorError(f"cannot read class embeddings from a {type(module).__name__}")


def replace_class_embedding(
    bundle: GeneratorBundle, initial: torch.Tensor | None = None, start_class: int | None = None
) -> LearnedEmbedding:
    """Swap the bundle's class-embedding module for one learned embedding: `initial`, else the
    table's entry for `start_class`, else the mean of the table (Noguchi & Harada's start)."""
    original = bundle.model.get_submodule(bundle.class_embedding)
    table = embedding_table(original)
    mean = table.mean(0) if start_class is None else table[start_class]
    if initial is not None and initial.shape != mean.shape:
        raise MismatchError(
            f"a learned class embedding of shape {tuple(initial.shape)} does not fit {bundle.name}, "
            f"whose class embeddings have shape {tuple(mean.shape)}"
        )
    learned = LearnedEmbedding(mean if initial is None else initial.to(mean.dtype))
    swap_submodule(bundle.model, bundle.class_embedding, learned.to(next(original.parameters()).device))
    return learned
