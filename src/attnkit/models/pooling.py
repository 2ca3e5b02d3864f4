"""Sequence pooling chosen by name, and the feed-forward attention model of Raffel & Ellis.

:class:`Pooling` turns (B, T, D) step features and their lengths into one (B, D) vector, with
the weights each step got where the choice has them:

- "attention": feed-forward attention (:class:`~attnkit.layers.FeedForwardAttention`,
  Raffel & Ellis 2015), weights (B, T) summing to 1 over the real steps;
- "gate": the three-line softmax gate (:class:`~attnkit.layers.AttentionGate`) over the
  features of each step, then the mean over the real steps; weights (B, T, D);
- "mean", "max", "last": no weights.

Padded steps never count: each choice reads the first ``lengths[b]`` steps of row b only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import masks
from ..layers import AttentionGate, FeedForwardAttention
from ..layers.base import check_lengths, check_sizes
from .registry import register

POOLINGS = ("attention", "gate", "mean", "max", "last")


class Pooling(nn.Module):
    """(B, T, D) features and (B,) lengths -> ((B, D) pooled, weights or None).

    >>> pool = Pooling("attention", 8)
    >>> out, w = pool(torch.randn(2, 5, 8), torch.tensor([5, 2]))
    >>> out.shape, bool(w[1, 2:].eq(0).all())
    (torch.Size([2, 8]), True)
    """

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in POOLINGS:
            raise ValueError(f"unknown pooling {kind!r}; expected one of {', '.join(POOLINGS)}")
        check_sizes("Pooling", dim=dim)
        self.kind = kind
        self.attend = FeedForwardAttention(dim) if kind == "attention" else None
        self.gate = AttentionGate(dim) if kind == "gate" else None

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        if x.dim() != 3 or lengths.shape != x.shape[:1]:
            raise ValueError(
                f"expected x (B, T, D) and lengths (B,), got {tuple(x.shape)} "
                f"and {tuple(lengths.shape)}"
            )
        check_lengths(lengths, x.shape[1])
        real = masks.padding(lengths, x.shape[1])  # (B, T) True = a real step
        if self.attend is not None:
            out = self.attend(x, mask=real)
            return out.context, out.weights
        if self.gate is not None:
            out = self.gate(x, mask=real)
            return out.context.sum(1) / lengths[:, None].to(x.dtype), out.weights
        if self.kind == "mean":
            return (x * real[..., None]).sum(1) / lengths[:, None].to(x.dtype), None
        if self.kind == "max":
            return x.masked_fill(~real[..., None], float("-inf")).amax(1), None
        return x[torch.arange(x.shape[0]), lengths - 1], None  # last


@dataclass
class RaffelConfig:
    inputs: int = 2  # features per step
    hidden_dim: int = 100
    pooling: str = "attention"
    outputs: int = 1


@register("raffel-ellis", RaffelConfig)
class RaffelEllis(nn.Module):
    """The feed-forward network with attention of Raffel & Ellis 2015 (arXiv:1512.08756):
    a Dense(hidden) layer applied to every step, pooling over the steps (attention in the
    paper; mean pooling is its control), Dense(hidden), and a linear output. No recurrence: the
    pooling alone carries information across time.

    >>> m = RaffelEllis(RaffelConfig())
    >>> m(torch.randn(3, 12, 2), torch.tensor([12, 10, 11])).shape
    torch.Size([3])
    """

    def __init__(self, cfg: RaffelConfig) -> None:
        super().__init__()
        check_sizes(
            "RaffelEllis", inputs=cfg.inputs, hidden_dim=cfg.hidden_dim, outputs=cfg.outputs
        )
        self.cfg = cfg
        self.per_step = nn.Linear(cfg.inputs, cfg.hidden_dim)
        self.pool = Pooling(cfg.pooling, cfg.hidden_dim)
        self.hidden = nn.Linear(cfg.hidden_dim, cfg.hidden_dim)
        self.out = nn.Linear(cfg.hidden_dim, cfg.outputs)

    def forward(self, x: Tensor, lengths: Tensor, *, return_weights: bool = False):
        h = F.relu(self.per_step(x), inplace=True)  # one (B, T, hidden) tensor fewer
        pooled, weights = self.pool(h, lengths)
        y = self.out(F.relu(self.hidden(pooled)))
        y = y[:, 0] if self.cfg.outputs == 1 else y
        return (y, weights) if return_weights else y

    def loss(self, batch) -> Tensor:
        """Mean squared error on a batch with ``x``, ``lengths`` and ``y``."""
        return F.mse_loss(self(batch.x, batch.lengths), batch.y)
