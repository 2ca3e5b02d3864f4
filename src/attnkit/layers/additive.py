"""Bahdanau (additive) attention."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..functional import attend
from ..functional.output import AttentionOutput
from ..functional.scores import AdditiveParams, additive, additive_projected, project_keys
from .base import QKVAttention, check_sizes


class AdditiveAttention(QKVAttention):
    """Additive attention, Bahdanau, Cho & Bengio 2014 (arXiv:1409.0473), eq. 6:

        e_ij = v^T tanh(W q_i + U k_j [+ b]),  a_i = softmax_j(e_ij),  c_i = sum_j a_ij v_j.

    Shapes: query (B, Tq, Dq) or (B, Dq); keys (B, Tk, Dk); values (B, Tk, Dv), default keys.
    Returns AttentionOutput(context (B, Tq, Dv), weights (B, Tq, Tk)).

    Example:
        >>> attn = AdditiveAttention(query_dim=64, key_dim=32, hidden_dim=48)
        >>> lengths = torch.tensor([10, 7, 3, 1])
        >>> out = attn(torch.randn(4, 64), torch.randn(4, 10, 32), lengths=lengths)
        >>> out.context.shape, out.weights.shape
        (torch.Size([4, 32]), torch.Size([4, 10]))
    """

    def __init__(
        self, query_dim: int, key_dim: int, hidden_dim: int, *, bias: bool = False
    ) -> None:
        super().__init__()
        check_sizes(
            "AdditiveAttention", query_dim=query_dim, key_dim=key_dim, hidden_dim=hidden_dim
        )
        self.query_dim, self.key_dim, self.hidden_dim = query_dim, key_dim, hidden_dim
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)  # W
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)  # U
        self.v = nn.Parameter(torch.empty(hidden_dim))
        self.bias = nn.Parameter(torch.zeros(hidden_dim)) if bias else None
        nn.init.uniform_(self.v, -1 / math.sqrt(hidden_dim), 1 / math.sqrt(hidden_dim))

    def params(self) -> AdditiveParams:
        return AdditiveParams(self.query_proj.weight, self.key_proj.weight, self.v, self.bias)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """e = v^T tanh(W q + U k + b): (B, Tq, Dq), (B, Tk, Dk) -> (B, Tq, Tk)."""
        return additive(query, keys, self.params())

    def project_keys(self, keys: Tensor) -> Tensor:
        """U k (+ b): (B, Tk, Dk) -> (B, Tk, Hd); pass it back as ``projected_keys=``."""
        return project_keys(keys, self.params())

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
        projected_keys: Tensor | None = None,
    ) -> AttentionOutput:
        """Bahdanau attention of ``query`` over ``keys`` (Bahdanau et al. 2014, eq. 6).

        Args:
            query, keys, values, mask, key_padding_mask, lengths, return_weights: as in
                :meth:`QKVAttention.forward <attnkit.layers.base.QKVAttention.forward>`.
            projected_keys: ``project_keys(keys)`` (U k), computed once by a decoder that attends to
                the same keys at every step.

        Returns:
            AttentionOutput: context (B, Tq, Dv) and weights (B, Tq, Tk) or None, as
            :meth:`QKVAttention.forward <attnkit.layers.base.QKVAttention.forward>` returns it.

        Raises:
            ValueError: for shapes, dtypes or masks that do not fit."""
        query, keys, values, mask, single = self._prepare(
            query, keys, values, mask, key_padding_mask, lengths
        )
        if projected_keys is None:
            return self._finish(self._attend(query, keys, values, mask, return_weights), single)
        if projected_keys.shape != (*keys.shape[:-1], self.hidden_dim):
            raise ValueError(
                f"projected_keys must be (B, Tk, Hd) = {(*keys.shape[:-1], self.hidden_dim)}, "
                f"got {tuple(projected_keys.shape)}"
            )
        w_q, v = self.query_proj.weight, self.v
        out = attend(
            query,
            keys,
            values,
            score=lambda q, _: additive_projected(q @ w_q.T, projected_keys, v),
            mask=mask,
            return_weights=return_weights,
        )
        return self._finish(out, single)

    def _attend(self, query, keys, values, mask, return_weights) -> AttentionOutput:
        return attend(
            query,
            keys,
            values,
            score="additive",
            score_params=self.params(),
            mask=mask,
            return_weights=return_weights,
        )
