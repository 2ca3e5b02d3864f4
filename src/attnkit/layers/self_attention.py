"""Sequence self-attention with additive or multiplicative scores (the SeqSelfAttention family)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..functional import attend
from ..functional.output import AttentionOutput
from ..functional.scores import AdditiveParams
from .base import check_dtype, check_features, check_sizes, layer_mask

_SCORES = ("additive", "multiplicative")


class SelfAttention(nn.Module):
    """Every step of a sequence attends to the steps of the same sequence:

        additive:        e_tt' = v^T tanh(W_t x_t + W_x x_t' + b)   (Bahdanau-style)
        multiplicative:  e_tt' = x_t^T W_a x_t'                      (Luong "general")
        c_t = sum_t' softmax_t'(e_tt') x_t'

    This is the layer popularised by the Keras ``SeqSelfAttention`` package; attention is over
    the inputs themselves (no value projection), optionally limited to a ``window`` of
    (left, right) steps (an int r means (r, r)) and/or ``causal``.

    Shapes: x (B, T, D); ``mask`` broadcastable to (B, T, T) (a 2-D mask is (T, T));
    ``key_padding_mask`` (B, T) or ``lengths`` (B,) mark the real steps.
    Returns AttentionOutput(context (B, T, D), weights (B, T, T)).

    Example:
        >>> sa = SelfAttention(32, score="additive", window=3)
        >>> sa(torch.randn(2, 12, 32), lengths=torch.tensor([12, 5])).context.shape
        torch.Size([2, 12, 32])
    """

    def __init__(
        self,
        dim: int,
        score: str = "additive",
        window: int | tuple[int | None, int | None] | None = None,
        causal: bool = False,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_sizes("SelfAttention", dim=dim, hidden_dim=hidden_dim)
        if score not in _SCORES:
            raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if isinstance(window, int):
            window = (window, window)
        self.dim, self.score_name, self.window, self.causal = dim, score, window, causal
        self.dropout = dropout
        if score == "additive":
            hidden = hidden_dim or dim
            self.w_t = nn.Linear(dim, hidden, bias=False)
            self.w_x = nn.Linear(dim, hidden, bias=True)
            self.v = nn.Parameter(torch.empty(hidden).uniform_(-1, 1) / math.sqrt(hidden))
        else:
            self.weight = nn.Parameter(torch.empty(dim, dim))
            nn.init.xavier_uniform_(self.weight)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
    ) -> AttentionOutput:
        """Sequence self-attention: every step attends to the others (the Keras
        SeqSelfAttention family), within the layer's window and causality.

        Args:
            x: (B, T, D).
            mask: True = may attend, broadcast to (B, T, T).
            key_padding_mask: (B, T), True on real steps; lengths: (B,), its shortcut.
            return_weights: also return the weights (default True).

        Returns:
            AttentionOutput: context (B, T, D) and weights (B, T, T) or None."""
        check_features("x", x, self.dim)
        check_dtype(self, x=x)
        b, t, _ = x.shape
        mask = layer_mask(mask, key_padding_mask, lengths, (b, t, t))
        params: AdditiveParams | Tensor
        if self.score_name == "additive":
            score = "additive"
            params = AdditiveParams(self.w_t.weight, self.w_x.weight, self.v, self.w_x.bias)
        else:
            score, params = "general", self.weight
        return attend(
            x,
            x,
            x,
            score=score,
            score_params=params,
            mask=mask,
            causal=self.causal,
            window=self.window,
            dropout_p=self.dropout if self.training else 0.0,
            return_weights=return_weights,
        )

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, score={self.score_name!r}, window={self.window}, causal={self.causal}"
        )
