"""Readable float64 reference implementations the library is tested against."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def ref_causal(tq: int, tk: int) -> Tensor:
    """Bottom-right causal mask written as loops."""
    m = torch.zeros(tq, tk, dtype=torch.bool)
    for i in range(tq):
        for j in range(tk):
            m[i, j] = j <= i + (tk - tq)
    return m


def ref_window(tq: int, tk: int, left, right) -> Tensor:
    m = torch.zeros(tq, tk, dtype=torch.bool)
    for i in range(tq):
        c = i + (tk - tq)
        for j in range(tk):
            m[i, j] = (left is None or j >= c - left) and (right is None or j <= c + right)
    return m


def ref_scores(q: Tensor, k: Tensor, score="scaled_dot", params=None, scale=None) -> Tensor:
    q, k = q.double(), k.double()
    if score in ("dot", "scaled_dot"):
        s = torch.einsum("...qd,...kd->...qk", q, k)
        if score == "scaled_dot":
            s = s * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
            scale = None
    elif score == "general":
        s = torch.einsum("...qd,de,...ke->...qk", q, params.double(), k)
    elif score == "additive":
        w_q, w_k, v = (p.double() for p in params[:3])
        wq = torch.einsum("...qd,hd->...qh", q, w_q)
        uk = torch.einsum("...kd,hd->...kh", k, w_k)
        if len(params) > 3 and params[3] is not None:
            uk = uk + params[3].double()
        s = torch.einsum(
            "...qkh,h->...qk", torch.tanh(wq[..., :, None, :] + uk[..., None, :, :]), v
        )
    else:
        s = score(q, k)
    return s if scale is None else s * scale


def attention_ref(q, k, v, score="scaled_dot", params=None, mask=None, scale=None):
    """(context, weights) in float64; fully-masked rows give zeros."""
    s = ref_scores(q, k, score, params, scale)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return torch.einsum("...qk,...kd->...qd", w, v.double()), w
