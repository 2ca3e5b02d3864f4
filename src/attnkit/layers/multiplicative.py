"""Luong (multiplicative) global attention."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import attend
from ..functional.output import AttentionOutput
from ..functional.scores import get_score
from .base import QKVAttention, check_sizes

_SCORES = ("dot", "scaled_dot", "general")


class MultiplicativeAttention(QKVAttention):
    """Global attention of Luong, Pham & Manning 2015 (arXiv:1508.04025), section 3.1:

        dot:        e_ij = q_i . k_j
        scaled_dot: e_ij = q_i . k_j / sqrt(D)      (Vaswani et al. 2017)
        general:    e_ij = q_i^T W k_j

    "dot" and "scaled_dot" need query_dim == key_dim; "general" learns W (Dq, Dk).
    Shapes: query (B, Tq, Dq) or (B, Dq); keys (B, Tk, Dk); values (B, Tk, Dv), default keys.
    Returns AttentionOutput(context (B, Tq, Dv), weights (B, Tq, Tk)).

    Example:
        >>> attn = MultiplicativeAttention(32, 32, score="general")
        >>> attn(torch.randn(2, 5, 32), torch.randn(2, 9, 32)).weights.shape
        torch.Size([2, 5, 9])
    """

    def __init__(self, query_dim: int, key_dim: int | None = None, score: str = "dot") -> None:
        super().__init__()
        key_dim = query_dim if key_dim is None else key_dim
        check_sizes("MultiplicativeAttention", query_dim=query_dim, key_dim=key_dim)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        if score != "general" and query_dim != key_dim:
            raise ValueError(
                f'score="{score}" needs query_dim == key_dim, got {query_dim} and {key_dim}; '
                'use score="general" to compare vectors of different sizes'
            )
        self.query_dim, self.key_dim, self.score_name = query_dim, key_dim, score
        self.weight = None
        if score == "general":
            self.weight = nn.Parameter(torch.empty(query_dim, key_dim))
            nn.init.xavier_uniform_(self.weight)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Logits (B, Tq, Tk) of the configured score."""
        return get_score(self.score_name, self.weight)(query, keys)

    def _attend(self, query, keys, values, mask, return_weights) -> AttentionOutput:
        return attend(
            query,
            keys,
            values,
            score=self.score_name,
            score_params=self.weight,
            mask=mask,
            return_weights=return_weights,
        )

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, score={self.score_name!r}"
