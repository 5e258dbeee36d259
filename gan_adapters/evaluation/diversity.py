"""Intra-cluster diversity (Ojha et al. 2021): do the samples vary, or copy the training images?

Each sample joins the cluster of its nearest training image; the score is the mean pairwise
distance between samples inside a cluster, averaged over the clusters with two or more samples,
over the mean pairwise distance between the training images themselves. About 1: samples vary
around each training image as much as the training images vary among themselves; 0: every
sample of a cluster is the same image (a copy, a collapse).

The paper's distance is LPIPS, whose backbones download at run time. Here it is an LPIPS-style
distance on EfficientNet-Lite0 (the perceptual backbone that installs offline): each tapped
feature map unit-normalised over channels, squared differences averaged over space, summed over
the taps, with no learned weights. It is named as such: not comparable to published LPIPS.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

DISTANCE_NAME = "effnet-lite0 feature distance (LPIPS-style, unweighted; not comparable to published LPIPS)"

Pairwise = Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor]
"""Two embeddings (a list of (N, D) tensors each) -> (N_a, N_b) distances."""


class FeatureDistance:
    """The LPIPS-style distance on EfficientNet-Lite0 features."""

    name = DISTANCE_NAME

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 50) -> None:
        from gan_adapters.training.perceptual import EfficientNetLite0Backbone

        self.network = EfficientNetLite0Backbone().to(device)
        self.device, self.batch_size = torch.device(device), batch_size

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per tap, (N, C*H*W) unit-normalised features scaled by 1/sqrt(H*W) (so that squared
        Euclidean distances are LPIPS's spatial means)."""
        taps: list[list[torch.Tensor]] = []
        for batch in images.split(self.batch_size):
            maps = self.network(batch.to(self.device, torch.float32))
            taps.append([F.normalize(m, dim=1).flatten(1) / (m.shape[-1] * m.shape[-2]) ** 0.5 for m in maps])
        return [torch.cat(parts).double().cpu() for parts in zip(*taps, strict=True)]

    @staticmethod
    def pairwise(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """Summed over taps: the squared distance of each pair."""
        return sum(torch.cdist(x, y).square() for x, y in zip(a, b, strict=True))


def mean_pairwise(embedding: list[torch.Tensor], pairwise: Pairwise) -> float:
    """The mean distance over distinct pairs of one set (0 for fewer than two)."""
    count = len(embedding[0])
    if count < 2:
        return 0.0
    return float(pairwise(embedding, embedding).sum() / (count * (count - 1)))


def intra_cluster_diversity(
    samples: list[torch.Tensor], training: list[torch.Tensor], pairwise: Pairwise
) -> float | None:
    """Mean within-cluster pairwise distance of the samples (clusters: nearest training image)
    over the training images' own mean pairwise distance; None when no cluster has two samples
    or the training images are all one."""
    nearest = pairwise(samples, training).argmin(1)
    within = []
    for cluster in nearest.unique():
        members = [part[nearest == cluster] for part in samples]
        if len(members[0]) >= 2:
            within.append(mean_pairwise(members, pairwise))
    spread = mean_pairwise(training, pairwise)
    if not within or spread == 0:
        return None
    return sum(within) / len(within) / spread
