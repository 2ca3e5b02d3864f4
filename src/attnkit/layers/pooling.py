"""Attention that pools or gates features: Raffel & Ellis pooling, the softmax gate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import masked_softmax, masks
from ..functional.output import AttentionOutput
from .base import check_dtype, check_features, check_sizes


class FeedForwardAttention(nn.Module):
    """Feed-forward attention pooling, Raffel & Ellis 2015 (arXiv:1512.08756), eq. 1-3:

        e_t = tanh(W h_t + b),  a_t = exp(e_t) / sum_k exp(e_k) over unmasked steps,
        c = sum_t a_t h_t.

    With ``hidden_dim`` the score is a one-hidden-layer MLP, e_t = v^T tanh(W h_t + b).
    Unlike the classic Keras layer (mask multiplied in, epsilon in the denominator) the masked
    softmax here is exact, and an all-masked sequence gets context 0.

    Shapes: x (B, T, D); mask (B, T) bool (True = real step) or lengths (B,).
    Returns AttentionOutput(context (B, D), weights (B, T), or None unless ``return_weights``).

    Example:
        >>> pool = FeedForwardAttention(16)
        >>> out = pool(torch.randn(3, 20, 16), lengths=torch.tensor([20, 11, 4]))
        >>> out.context.shape, out.weights.shape
        (torch.Size([3, 16]), torch.Size([3, 20]))
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, bias: bool = True) -> None:
        super().__init__()
        check_sizes("FeedForwardAttention", dim=dim, hidden_dim=hidden_dim)
        self.dim, self.hidden_dim = dim, hidden_dim
        if hidden_dim is None:
            self.proj = nn.Linear(dim, 1, bias=bias)
            self.out = None
        else:
            self.proj = nn.Linear(dim, hidden_dim, bias=bias)
            self.out = nn.Linear(hidden_dim, 1, bias=False)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
    ) -> AttentionOutput:
        """Feed-forward attention pooling (Raffel & Ellis 2015, eq. 1-3): e_t = tanh(W h_t + b)
        (v^T tanh(W h_t + b) with ``hidden_dim``), a = softmax(e), c = sum_t a_t h_t.

        Args:
            x: (B, T, D).
            mask: (B, T), True on the steps to pool.
            lengths: (B,), real steps per example (the shortcut for ``mask``).
            return_weights: also return the weights (default True).

        Returns:
            AttentionOutput: context (B, D) and weights (B, T) (0 on masked steps) or None."""
        check_features("x", x, self.dim)
        check_dtype(self, x=x)
        b, t, _ = x.shape
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b, t)):
            raise ValueError(
                f"mask must be bool of shape (B, T) = ({b}, {t}), got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        if lengths is not None:
            mask = masks.combine(mask, masks.padding(lengths, t))
        if mask is not None:  # a padded step reaches no output, even as 0 x NaN
            x = x.masked_fill(~mask[..., None], 0.0)
        energy = torch.tanh(self.proj(x))  # (B, T, 1) or (B, T, Hd)
        if self.out is not None:
            energy = self.out(energy)
        weights = masked_softmax(energy.squeeze(-1), mask)  # (B, T)
        context = (weights.unsqueeze(1) @ x).squeeze(1)  # (B, D)
        return AttentionOutput(context, weights if return_weights else None)


class AttentionGate(nn.Module):
    """The three-line "softmax gate": a = softmax(Dense(x)) over features, output x * a.

    A feature gate, not a sequence attention: each step's features compete for weight.
    Padded steps (mask False) give output 0.

    Shapes: x (B, T, D) or (B, D); mask (B, T). Returns AttentionOutput(context like x,
    weights like x, or None unless ``return_weights``).

    Example:
        >>> AttentionGate(8)(torch.randn(4, 8)).context.shape
        torch.Size([4, 8])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_sizes("AttentionGate", dim=dim)
        self.dim = dim
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
    ) -> AttentionOutput:
        """The softmax gate: softmax(Dense(x)) * x, the three-line Keras example.

        Args:
            x: (B, T, D).
            mask: (B, T), True on real steps; lengths: (B,), its shortcut.
            return_weights: also return the gate (default True).

        Returns:
            AttentionOutput: context (B, T, D), x gated, and the gate (B, T, D) or None."""
        check_features("x", x, self.dim, ndims=(2, 3))
        check_dtype(self, x=x)
        weights = torch.softmax(self.proj(x), dim=-1)
        context = x * weights
        if lengths is not None:
            mask = masks.combine(mask, masks.padding(lengths, x.shape[1]))
        if mask is not None:
            if x.dim() != 3 or mask.dtype != torch.bool or mask.shape != x.shape[:2]:
                raise ValueError(
                    f"mask must be bool (B, T) = {tuple(x.shape[:2])} for x of shape "
                    f"{tuple(x.shape)}, got {mask.dtype} {tuple(mask.shape)}"
                )
            context = context.masked_fill(~mask.unsqueeze(-1), 0.0)  # 0, whatever was there
        return AttentionOutput(context, weights if return_weights else None)
