"""The record every attention function and layer returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["AttentionOutput"]


@dataclass
class AttentionOutput:
    """Result of an attention call.

    Attributes:
        context: the attended values, (..., Tq, Dv) (layers document their own shapes).
        weights: the attention distribution, (..., Tq, Tk), or None when not requested. These are
            the weights before attention dropout, so unmasked rows sum to 1.
    """

    context: Tensor
    weights: Tensor | None = None

    def __iter__(self):
        """Unpack as ``context, weights = out``."""
        yield self.context
        yield self.weights
