"""Score functions: unnormalised attention logits e = score(q, k) of shape (..., Tq, Tk).

Queries are (..., Tq, Dq) and keys (..., Tk, Dk); leading dimensions (B or B, H) broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "AdditiveParams",
    "ScoreFn",
    "additive",
    "additive_projected",
    "dot",
    "general",
    "get_score",
    "project_keys",
    "scaled_dot",
]

ScoreFn = Callable[[Tensor, Tensor], Tensor]


class AdditiveParams(NamedTuple):
    """Parameters of the additive score v^T tanh(W q + U k + b), in nn.Linear layout.

    Shapes: w_q (Hd, Dq), w_k (Hd, Dk), v (Hd,), bias (Hd,) or None; Hd is the hidden size.
    """

    w_q: Tensor
    w_k: Tensor
    v: Tensor
    bias: Tensor | None = None


def dot(q: Tensor, k: Tensor) -> Tensor:
    """Luong et al. 2015 "dot": e_ij = q_i . k_j; (..., Tq, D), (..., Tk, D) -> (..., Tq, Tk)."""
    return q @ k.transpose(-2, -1)


def scaled_dot(q: Tensor, k: Tensor, scale: float | None = None) -> Tensor:
    """Vaswani et al. 2017, eq. 1: e_ij = q_i . k_j / sqrt(D) (or times ``scale``)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return (q @ k.transpose(-2, -1)) * scale


def general(q: Tensor, k: Tensor, weight: Tensor) -> Tensor:
    """Luong et al. 2015 "general": e_ij = q_i^T W k_j with W of shape (Dq, Dk)."""
    return (q @ weight) @ k.transpose(-2, -1)


def additive(q: Tensor, k: Tensor, params: AdditiveParams) -> Tensor:
    """Bahdanau et al. 2014, eq. 6 (their a(s, h)): e_ij = v^T tanh(W q_i + U k_j + b).

    This reference form materialises a (..., Tq, Tk, Hd) tensor.
    """
    return additive_projected(q @ params.w_q.T, project_keys(k, params), params.v)


def project_keys(k: Tensor, params: AdditiveParams) -> Tensor:
    """U k + b, the key half of the additive score: (..., Tk, Dk) -> (..., Tk, Hd).

    A decoder that attends to the same keys at every step computes this once.
    """
    uk = k @ params.w_k.T
    return uk if params.bias is None else uk + params.bias


def additive_projected(wq: Tensor, uk: Tensor, v: Tensor) -> Tensor:
    """v^T tanh(wq_i + uk_j) from projected queries (..., Tq, Hd) and keys (..., Tk, Hd)."""
    hidden = torch.tanh(wq.unsqueeze(-2) + uk.unsqueeze(-3))  # (..., Tq, Tk, Hd)
    return hidden @ v  # (..., Tq, Tk)


_NAMES = ("dot", "scaled_dot", "general", "additive")


def _checked(score: ScoreFn) -> ScoreFn:
    """A user's score callable, with its result checked to be a (..., Tq, Tk) tensor."""

    def fn(q: Tensor, k: Tensor) -> Tensor:
        s = score(q, k)
        want = (*q.shape[:-1], k.shape[-2])
        if not isinstance(s, Tensor) or tuple(s.shape) != want:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"the score callable returned {got}; expected (..., Tq, Tk) = {want}")
        return s

    return fn


def get_score(score: str | ScoreFn, params: object = None, scale: float | None = None) -> ScoreFn:
    """Resolve ``score`` (a name or a callable) and its parameters to ``f(q, k) -> logits``.

    ``scale``: for "scaled_dot" it replaces 1/sqrt(D); for every other score it multiplies the
    logits when given.
    """
    if callable(score):
        fn = _checked(score)
    elif score == "dot":
        fn = dot
    elif score == "scaled_dot":
        return lambda q, k: scaled_dot(q, k, scale)
    elif score == "general":
        if not isinstance(params, Tensor) or params.dim() != 2:
            raise ValueError(
                'score="general" needs score_params=W, a (Dq, Dk) tensor, got '
                f"{type(params).__name__}"
            )
        weight = params
        fn = lambda q, k: general(q, k, weight)  # noqa: E731
    elif score == "additive":
        if isinstance(params, tuple) and not isinstance(params, AdditiveParams):
            params = AdditiveParams(*params)
        if not isinstance(params, AdditiveParams):
            raise ValueError(
                'score="additive" needs score_params=(w_q (Hd, Dq), w_k (Hd, Dk), v (Hd,)[, bias])'
            )
        fn = lambda q, k: additive(q, k, params)  # noqa: E731
    else:
        raise ValueError(f"unknown score {score!r}; expected one of {_NAMES} or a callable")
    if scale is None:
        return fn
    return lambda q, k: fn(q, k) * scale
