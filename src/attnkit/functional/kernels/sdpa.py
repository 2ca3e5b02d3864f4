"""torch's fused scaled-dot-product kernel, for the dot-product scores.

Differences from calling ``F.scaled_dot_product_attention`` directly, all deliberate:
causal masks align bottom-right (SDPA's ``is_causal`` aligns top-left when Tq != Tk), fully
masked rows give context 0 on every backend, and weights can be returned: on CPU they are
recomputed from the fused kernel's log-sum-exp L as exp(s - L) under the same mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..output import AttentionOutput
from ..softmax import masked_softmax
from . import eager
from .request import Request, pick

_DOT_SCORES = ("dot", "scaled_dot", "general")


def unsupported(req: Request) -> str | None:
    """SDPA computes softmax(q k^T * scale) v: the "dot" and "scaled_dot" scores, and "general"
    as the dot product of (q W) with k. Returns why it cannot serve ``req``, or None."""
    if isinstance(req.score, str) and req.score in _DOT_SCORES:
        return None
    return f"it computes dot-product scores {_DOT_SCORES} only, not score={req.score!r}"


def _effective_scale(req: Request) -> float:
    if req.scale is not None:
        return req.scale
    return 1.0 / math.sqrt(req.q.shape[-1]) if req.score == "scaled_dot" else 1.0


def _fused_with_lse(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float
) -> tuple[Tensor, Tensor] | None:
    """(context, logsumexp) from the CPU flash kernel, or None where it is unavailable."""
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or q.device.type != "cpu" or q.dim() != 4 or v.shape[-1] != q.shape[-1]:
        return None
    bias = None
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(~mask, float("-inf"))
    context, lse = op(q, k, v, 0.0, False, attn_mask=bias, scale=scale)
    return context, lse


def _finite(req: Request) -> bool:
    """No NaN or inf in q, k or the scale (one reduction each, unless the caller knew; a sum
    that overflows only sends a finite call to eager, which is exact too)."""
    if req.scale is not None and not math.isfinite(req.scale):
        return False
    if req.finite is not None:
        return req.finite
    q, k = req.q, req.k
    if q.requires_grad or k.requires_grad:  # a sum of these would record a graph
        q, k = q.detach(), k.detach()
    return math.isfinite(float(q.sum() + k.sum()))


def run(req: Request) -> AttentionOutput:
    if not _finite(req):
        # torch's fused kernels can hide a NaN (with one key, CPU SDPA returns 0 for it); the
        # reference kernel shows it wherever it reaches, which is what attnkit promises
        return eager.run(req)
    q, k, v = req.q, req.k, req.v
    if req.score == "general":
        q = q @ req.params  # (..., Tq, Dk)
    squeeze = q.dim() == 3
    if squeeze:  # SDPA wants (B, H, T, D)
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
    scale = _effective_scale(req)

    real_mask = req.full_mask()
    if real_mask is not None and squeeze and real_mask.dim() == 3:
        real_mask = real_mask.unsqueeze(1)  # (B, 1, Tq, Tk)
    mask, is_causal = real_mask, False
    if req.causal and req.mask is None and req.window is None and req.tq == req.tk:
        mask, is_causal = None, True  # the same lower triangle; lets SDPA skip masked blocks
    row_ok = None
    if mask is not None:
        row_ok = mask.any(dim=-1, keepdim=True)  # (..., Tq, 1)
        mask = mask | ~row_ok  # fully-masked rows attend everywhere here and are zeroed below

    fused = None
    if req.return_weights and req.dropout_p == 0 and not is_causal:
        fused = _fused_with_lse(q, k, v, mask, scale)
    if fused is not None:
        context, lse = fused
    else:
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=req.dropout_p, is_causal=is_causal, scale=scale
        )
        lse = None
    if row_ok is not None:
        context = context.masked_fill(~row_ok, 0.0)

    weights = None
    if req.return_weights:
        weights = _weights(req, q, k, lse, real_mask, scale)
        if squeeze:
            weights = weights.squeeze(1)
    if squeeze:
        context = context.squeeze(1)
    return AttentionOutput(context, weights)


def _weights(req: Request, q, k, lse, mask, scale) -> Tensor:
    """Weights (B, H', Tq', Tk) of the selected heads and rows only, from the log-sum-exp where
    the fused kernel gave one; from a masked softmax over those rows where it did not, or where
    q/k need gradients (the fused log-sum-exp carries none)."""
    heads, rows = req.weights_heads, req.weights_rows
    q, k, mask = pick(pick(q, heads, -3), rows, -2), pick(k, heads, -3), pick(mask, heads, -3)
    lse, mask = pick(pick(lse, heads, -2), rows, -1), pick(mask, rows, -2)
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H', Tq', Tk)
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    if lse is None or needs_grad:
        return masked_softmax(scores, mask)
    weights = torch.exp(scores.float() - lse.unsqueeze(-1).float()).to(q.dtype)
    return weights if mask is None else weights.masked_fill(~mask, 0.0)
