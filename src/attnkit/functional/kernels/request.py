"""The validated description of one attention call, shared by every kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import torch
from torch import Tensor

from .. import masks
from ..scores import ScoreFn


@dataclass
class Request:
    """Inputs of ``attend`` after validation. ``mask`` is the user's mask only."""

    q: Tensor  # (..., Tq, Dq)
    k: Tensor  # (..., Tk, Dk)
    v: Tensor  # (..., Tk, Dv)
    score: Any  # the name (str) or the callable the user gave
    score_fn: ScoreFn
    scale: float | None
    mask: Tensor | None
    causal: bool
    window: tuple[int | None, int | None] | None
    dropout_p: float
    return_weights: bool
    params: Any = None  # the score's parameters (general: W; additive: AdditiveParams)
    weights_rows: Tensor | None = None  # return weights for these query rows only
    weights_heads: Tensor | None = None  # ... and these heads only (dim -3 of 4-D inputs)
    finite: bool | None = None  # q and k known free of NaN and inf (None: unknown)

    @property
    def tq(self) -> int:
        return self.q.shape[-2]

    @property
    def tk(self) -> int:
        return self.k.shape[-2]

    def structural_mask(self) -> Tensor | None:
        """(Tq, Tk) causal/window mask, or None. Aligned bottom-right, causality leaves a
        single query row every key (a decoding step), so it adds no mask there."""
        dev = self.q.device
        causal = masks.causal(self.tq, self.tk, dev) if self.causal and self.tq > 1 else None
        win = masks.window(self.tq, self.tk, *self.window, device=dev) if self.window else None
        return masks.combine(causal, win)

    def full_mask(self) -> Tensor | None:
        """User mask AND causal AND window, broadcastable to (..., Tq, Tk); None if unmasked."""
        return masks.combine(self.mask, self.structural_mask())

    def select_weights(self, weights: Tensor) -> Tensor:
        """The heads (dim -3) and query rows (dim -2) of full weights that were asked for."""
        return pick(pick(weights, self.weights_heads, -3), self.weights_rows, -2)


@overload
def pick(x: Tensor, index: Tensor | None, dim: int) -> Tensor: ...
@overload
def pick(x: None, index: Tensor | None, dim: int) -> None: ...
def pick(x: Tensor | None, index: Tensor | None, dim: int) -> Tensor | None:
    """``x.index_select(dim, index)``; ``x`` unchanged where there is no index, or where ``x``
    lacks that dim or broadcasts along it (size 1), as a mask may."""
    if x is None or index is None or x.dim() < -dim or x.shape[dim] == 1:
        return x
    return x.index_select(dim, index.to(x.device))


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: float64 stays, everything else accumulates in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
