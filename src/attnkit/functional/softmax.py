"""Masked softmax that is safe on fully-masked rows."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masked_softmax"]


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """softmax(scores) over ``dim``, restricted to entries where ``mask`` is True.

    Masked entries get exactly 0. A row whose entries are all masked gets all zeros (not NaN,
    not uniform), and its gradient is zero, because the row is replaced by a constant before
    the softmax and its output is overwritten afterwards.

    Args:
        scores: (..., Tk) logits.
        mask: bool, broadcastable to ``scores``; True = may attend.
        dim: the dimension to normalise.

    Returns:
        Tensor of the shape of ``scores``.
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    any_valid = mask.any(dim=dim, keepdim=True)
    logits = scores.masked_fill(~mask, float("-inf"))
    # Fully-masked rows would be softmax(-inf, ..., -inf) = NaN: give them finite logits.
    logits = logits.masked_fill(~any_valid, 0.0)
    return torch.softmax(logits, dim=dim).masked_fill(~mask, 0.0)
