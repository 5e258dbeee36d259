"""Cross-domain distance consistency (CDC, Ojha et al. 2021): keep distinct latents distinct.

For a batch of latents, the generator's features at each adapted site give each sample a
distribution over the others: the softmax of its cosine similarities to them. The source
generator's distributions are the reference; the adapted generator's are pulled toward them by
a KL divergence, so samples that differed in the source still differ after adaptation (the
remedy the field uses against collapse below 100 images). With adapters, the source is the same
model with its adapters disabled: no second copy of the generator. The source pass runs without
gradients, so a step costs one more forward of the batch (and, in the supervised recipe, which
has no random batch of its own, one more forward and backward of a batch of random latents).

Features come from the adapted sites that are modules (a forward hook on each norm sees its
output, adapter applied); sites rewritten into a graph (inline `batch_norm` calls) are not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.errors import ConfigError
from gan_adapters.surgery import disable_adapters, require_state


@contextmanager
def site_outputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward of `model` appends the outputs of its active adapter's
    module sites, in model order, to the list yielded."""
    record = require_state(model).record(None)
    modules = [model.get_submodule(site.module_path) for site in record.sites if site.module_path is not None]
    if not modules:
        raise ConfigError(
            "consistency_weight reads features at the adapted modules, and this model's sites are all "
            "inline calls: set consistency_weight = 0"
        )
    collected: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: collected.append(out)) for m in modules]
    try:
        yield collected
    finally:
        for handle in handles:
            handle.remove()


def similarity_log_probs(features: torch.Tensor) -> torch.Tensor:
    """(N, N-1): each sample's log-softmax over its cosine similarities to the other samples."""
    count = features.shape[0]
    unit = F.normalize(features.flatten(1).float(), dim=1)
    others = ~torch.eye(count, dtype=torch.bool, device=features.device)
    return F.log_softmax((unit @ unit.T)[others].view(count, count - 1), dim=1)


def distance_consistency(source: list[torch.Tensor], adapted: list[torch.Tensor]) -> torch.Tensor:
    """Mean over sites of KL(source || adapted) between the samples' similarity distributions
    (summed over the other samples, averaged over samples)."""
    terms = [
        F.kl_div(similarity_log_probs(a), similarity_log_probs(s), log_target=True, reduction="batchmean")
        for s, a in zip(source, adapted, strict=True)
    ]
    return torch.stack(terms).mean()


def with_consistency(
    generator: nn.Module, images_of: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(`images_of(codes)`, with gradients; the CDC term of its first `count` rows): the source's
    features come from a second pass over those rows with the adapters disabled, without gradients."""
    with site_outputs(generator) as adapted:
        images = images_of(codes)
    with torch.no_grad(), disable_adapters(generator), site_outputs(generator) as source:
        images_of(codes[:count])
    return images, distance_consistency(source, [a[:count] for a in adapted])
