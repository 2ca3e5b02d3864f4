"""The reference kernel: materialise scores, masked softmax, weighted sum."""

from __future__ import annotations

import torch.nn.functional as F

from ..output import AttentionOutput
from ..softmax import masked_softmax
from .request import Request


def supports(req: Request) -> bool:
    """Eager serves every request."""
    return True


def run(req: Request) -> AttentionOutput:
    """softmax(score(q, k) + M) v, written out. Memory O(Tq * Tk) per batch and head."""
    scores = req.score_fn(req.q, req.k)  # (..., Tq, Tk)
    weights = masked_softmax(scores, req.full_mask())
    dropped = F.dropout(weights, req.dropout_p) if req.dropout_p > 0 else weights
    context = dropped @ req.v  # (..., Tq, Dv)
    return AttentionOutput(context, weights if req.return_weights else None)
