"""Samplers the trainer takes (``fit(..., sampler=...)``) that several tasks share: each maps
(epoch, n) to the epoch's order of example indices, or to its list of batches."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["length_batches"]


def length_batches(
    lengths: Tensor, batch_size: int, seed: int, pool: int = 50, tokens: bool = False
):
    """A sampler (``train.fit``'s hook): each epoch a fresh shuffle, cut into pools of
    ``pool`` batches; in each pool the examples are sorted by length and cut into batches, and
    the batches of the whole epoch are shuffled. Every example is seen once per epoch.

    With ``tokens`` the batches hold about the same number of padded positions instead of the
    same number of examples: ``batch_size`` times the mean length, so more short examples and
    fewer long ones (Vaswani et al. 2017 batch by tokens). A batch's loss is its mean over
    target tokens, so batches of equal size in examples give a long example's tokens less
    weight than a short one's; batches of equal size in tokens weigh every token alike, as the
    corpus likelihood does. The sampler then returns the epoch's batches, about as many."""
    lengths = lengths.to(torch.float64)
    budget = batch_size * float(lengths.mean()) if len(lengths) else 0.0

    def cut(ranked: Tensor) -> list[Tensor]:
        if not tokens:
            return list(ranked.split(batch_size))
        batches, start = [], 0
        sizes = lengths[ranked].tolist()  # ascending: the last example is a batch's longest
        for end in range(1, len(ranked) + 1):
            if end - start > 1 and (end - start) * sizes[end - 1] > budget:
                batches.append(ranked[start : end - 1])
                start = end - 1
        rest = ranked[start:]  # the pool's longest: joins the batch before it if it is small
        if batches and len(rest) * sizes[-1] < budget / 2:
            return batches[:-1] + [torch.cat([batches[-1], rest])]
        return batches + [rest]

    def sample(epoch: int, n: int) -> Tensor | list[Tensor]:
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        order = torch.randperm(n, generator=gen)
        batches = []
        for chunk in order.split(batch_size * pool):
            batches += cut(chunk[torch.argsort(lengths[chunk], stable=True)])
        if tokens:
            return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        full = [b for b in batches if len(b) == batch_size]
        short = [b for b in batches if len(b) != batch_size]  # at most one per pool: at the end
        shuffled = [full[i] for i in torch.randperm(len(full), generator=gen).tolist()]
        return torch.cat(shuffled + short)

    return sample
