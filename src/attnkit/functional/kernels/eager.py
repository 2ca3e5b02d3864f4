"""The reference kernel: materialise scores, masked softmax, weighted sum."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..output import AttentionOutput
from ..scores import AdditiveParams, get_score
from ..softmax import masked_softmax
from . import linear
from .request import Request, acc_dtype


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
        weights = masked_softmax(_scores(req), req.full_mask())  # (..., Tq, Tk)
    dropped = F.dropout(weights, req.dropout_p) if req.dropout_p > 0 else weights
    context = (dropped @ req.v.to(dropped.dtype)).to(req.v.dtype)  # (..., Tq, Dv)
    weights = weights.to(req.q.dtype)
    return AttentionOutput(context, req.select_weights(weights) if req.return_weights else None)


def _scores(req: Request) -> Tensor:
    """The logits (..., Tq, Tk) in the accumulation dtype: half and bfloat16 inputs of a named
    score are scored in float32, so a logit beyond float16's range (65504) stays finite."""
    acc = acc_dtype(req.q.dtype)
    if acc == req.q.dtype or callable(req.score):
        return req.score_fn(req.q, req.k).to(acc)
    params = req.params
    if isinstance(params, Tensor):
        params = params.to(acc)
    elif isinstance(params, tuple):
        params = AdditiveParams(*(None if t is None else t.to(acc) for t in params))  # type: ignore[arg-type]  # bias may be None
    return get_score(req.score, params, req.scale)(req.q.to(acc), req.k.to(acc))
