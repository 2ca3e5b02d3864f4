"""The reference kernel: materialise scores, masked softmax, weighted sum."""

from __future__ import annotations

import torch.nn.functional as F

from ..output import AttentionOutput
from ..softmax import masked_softmax
from . import linear
from .request import Request


def unsupported(req: Request) -> str | None:
    """Eager serves every request."""
    return None


def run(req: Request) -> AttentionOutput:
    """softmax(score(q, k) + M) v, written out. Memory O(Tq * Tk) per batch and head.

    For ``score="linear"`` the weights are phi(q_i).phi(k_j) normalised per row, written out.
    """
    if req.score == "linear":
        weights = linear.quadratic_weights(
            req, linear.feature_map(req.q), linear.feature_map(req.k)
        )
    else:
        scores = req.score_fn(req.q, req.k)  # (..., Tq, Tk)
        weights = masked_softmax(scores, req.full_mask())
    dropped = F.dropout(weights, req.dropout_p) if req.dropout_p > 0 else weights
    context = dropped @ req.v  # (..., Tq, Dv)
    return AttentionOutput(context, req.select_weights(weights) if req.return_weights else None)
