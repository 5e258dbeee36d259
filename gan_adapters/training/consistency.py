"""Cross-domain distance consistency (CDC, Ojha et al. 2021): keep distinct latents distinct.

For a batch of latents, the generator's features at each adapted site give each sample a
distribution over the others: the softmax of its cosine similarities to them. The source
generator's distributions are the reference; the adapted generator's are pulled toward them by
a KL divergence, so samples that differed in the source still differ after adaptation (the
remedy the field uses against collapse below 100 images). With adapters, the source is the same
model with its adapters disabled: no second copy of the generator. Under full fine-tuning (CDC as
its authors ran it) the source is a frozen copy taken before the first step: the generator's
memory twice. Either way the source pass runs without gradients, so a step costs one more forward
of the batch (and, in the supervised recipe, which has no random batch of its own, one more
forward and backward of a batch of random latents).

Features come from the adapted sites that are modules (a forward hook on each norm sees its
output, adapter applied), or under full fine-tuning from every normalisation layer; sites
rewritten into a graph (inline `batch_norm` calls) are not read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from gan_adapters.errors import ConfigError
from gan_adapters.surgery import disable_adapters, has_adapters, is_normalization, require_state


def feature_paths(model: nn.Module) -> list[str]:
    """The modules whose outputs CDC compares: the active adapter's module sites, or on a model
    without adapters (full fine-tuning) its normalisation layers."""
    if has_adapters(model):
        record = require_state(model).record(None)
        paths = [site.module_path for site in record.sites if site.module_path is not None]
    else:
        paths = [path for path, module in model.named_modules() if is_normalization(module)]
    if not paths:
        raise ConfigError(
            "consistency_weight reads features at the adapted modules (or, fully fine-tuned, the "
            "normalisation layers), and this model has none as modules: set consistency_weight = 0"
        )
    return paths


@contextmanager
def site_outputs(model: nn.Module, paths: list[str]) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward of `model` appends the outputs of the modules at `paths`,
    in model order, to the list yielded."""
    collected: list[torch.Tensor] = []
    hooks = [
        model.get_submodule(p).register_forward_hook(lambda _m, _i, o: collected.append(o)) for p in paths
    ]
    try:
        yield collected
    finally:
        for hook in hooks:
            hook.remove()


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
    generator: nn.Module,
    images_of: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    codes: torch.Tensor,
    count: int,
    source: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(`images_of(generator, codes)`, with gradients; the CDC term of its first `count` rows): the
    source's features come from a second pass over those rows without gradients, through `source`
    (a frozen copy) or, when None, the generator with its adapters disabled."""
    paths = feature_paths(generator)
    with site_outputs(generator, paths) as adapted:
        images = images_of(generator, codes)
    reference = generator if source is None else source
    with torch.no_grad(), _as_source(generator, source), site_outputs(reference, paths) as features:
        images_of(reference, codes[:count])
    return images, distance_consistency(features, [a[:count] for a in adapted])


def _as_source(generator: nn.Module, source: nn.Module | None):
    return disable_adapters(generator) if source is None else nullcontext()


def frozen_source(generator: nn.Module) -> nn.Module:
    """A frozen copy of the generator as it is now: the source of CDC under full fine-tuning."""
    return copy.deepcopy(generator).requires_grad_(False).eval()
