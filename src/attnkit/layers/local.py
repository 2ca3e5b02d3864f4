"""Luong local attention (local-m and local-p)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import attend, masked_softmax
from ..functional.masks import combine
from ..functional.output import AttentionOutput
from .base import QKVAttention

_MODES = ("monotonic", "predictive")


class LocalAttention(QKVAttention):
    """Local attention of Luong, Pham & Manning 2015 (arXiv:1508.04025), section 3.2.

    Query t attends to the keys s with |s - p_t| <= width:

    - ``mode="monotonic"`` (local-m): p_t = t, the query's own position (``positions=``
      overrides it, e.g. the step number during incremental decoding);
    - ``mode="predictive"`` (local-p): p_t = (S - 1) * sigmoid(v_p^T tanh(W_p q_t)), with S the
      number of unmasked keys, and the in-window softmax is multiplied by a Gaussian,
      a_t(s) = align(q_t, k_s) * exp(-(s - p_t)^2 / (2 sigma^2)), sigma = width / 2 (eq. 10).
      As in the paper these weights are not renormalised, so rows sum to at most 1.

    ``inner`` supplies the scores (``align``): an AdditiveAttention or MultiplicativeAttention.
    Shapes as for ``inner``: query (B, Tq, Dq) or (B, Dq); keys (B, Tk, Dk); values (B, Tk, Dv).

    Example:
        >>> local = LocalAttention(MultiplicativeAttention(16, score="general"), width=2)
        >>> local(torch.randn(3, 6, 16), torch.randn(3, 8, 16)).weights.shape
        torch.Size([3, 6, 8])
    """

    def __init__(
        self,
        inner: QKVAttention,
        width: int,
        mode: str = "monotonic",
        hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(inner, QKVAttention) or isinstance(inner, LocalAttention):
            raise ValueError(
                "inner must be an AdditiveAttention or MultiplicativeAttention (the scores), "
                f"got {type(inner).__name__}"
            )
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < (mode == "predictive"):
            raise ValueError(f"width must be an int >= 1 (>= 0 for monotonic), got {width!r}")
        self.inner, self.width, self.mode = inner, width, mode
        self.query_dim, self.key_dim = inner.query_dim, inner.key_dim
        self.predictor = None
        if mode == "predictive":
            hidden = hidden_dim or inner.query_dim
            self.predictor = nn.Sequential(  # v_p^T tanh(W_p h_t)
                nn.Linear(inner.query_dim, hidden, bias=False),
                nn.Tanh(),
                nn.Linear(hidden, 1, bias=False),
            )

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return self.inner.score(query, keys)

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
        positions: Tensor | int | None = None,
    ) -> AttentionOutput:
        """Luong local attention: the inner attention within a window around p_t.

        Args:
            query, keys, values, mask, key_padding_mask, lengths, return_weights: as in
                :meth:`QKVAttention.forward <attnkit.layers.base.QKVAttention.forward>`.
            positions: the window centres p_t, (Tq,), (B, Tq) or an int, overriding local-m's
                (local-p predicts its own).

        Returns:
            AttentionOutput: context (B, Tq, Dv) and weights (B, Tq, Tk) or None, as
            :meth:`QKVAttention.forward <attnkit.layers.base.QKVAttention.forward>` returns it.

        Raises:
            ValueError: for shapes, dtypes or masks that do not fit."""
        query, keys, values, mask, single = self._prepare(
            query, keys, values, mask, key_padding_mask, lengths
        )
        centre = self.centres(query, mask, keys.shape[1], positions)
        return self._finish(self._local(query, keys, values, mask, centre, return_weights), single)

    def centres(
        self, query: Tensor, mask: Tensor | None, tk: int, positions: Tensor | int | None = None
    ) -> Tensor:
        """p_t for every query (B, Tq, Dq): (B, Tq) float."""
        b, tq = query.shape[:2]
        if self.predictor is None:
            pos = torch.arange(tq) if positions is None else torch.as_tensor(positions)
            if pos.dtype == torch.bool or pos.is_complex() or pos.dim() > 2:
                raise ValueError(f"positions must be an int or (Tq,) / (B, Tq) numbers, got {pos}")
            try:
                return pos.to(query.device, query.dtype).expand(b, tq)
            except RuntimeError:
                raise ValueError(
                    f"positions of shape {tuple(pos.shape)} do not broadcast to (B, Tq) = {(b, tq)}"
                ) from None
        if mask is None:
            src_len = torch.full((b, tq), float(tk), dtype=query.dtype, device=query.device)
        else:  # S = the number of keys this query may see
            src_len = mask.expand(b, tq, tk).sum(-1).to(query.dtype)
        gate = torch.sigmoid(self.predictor(query).squeeze(-1))  # (B, Tq)
        return (src_len - 1).clamp(min=0) * gate

    def _local(self, query, keys, values, mask, centre, return_weights) -> AttentionOutput:
        tk = keys.shape[1]
        centre = centre.unsqueeze(-1)  # (B, Tq, 1)
        dist = torch.arange(tk, device=keys.device, dtype=query.dtype) - centre  # (B, Tq, Tk)
        band = dist.abs() <= self.width
        full = combine(mask, band)
        if self.predictor is None:
            return attend(
                query,
                keys,
                values,
                score=self.inner.score,
                mask=full,
                return_weights=return_weights,
            )
        sigma = self.width / 2
        align = masked_softmax(self.inner.score(query, keys), full)
        weights = align * torch.exp(-(dist**2) / (2 * sigma**2))  # Luong eq. 10
        context = weights @ values  # (B, Tq, Dv)
        return AttentionOutput(context, weights if return_weights else None)

    def extra_repr(self) -> str:
        return f"width={self.width}, mode={self.mode!r}"
