"""Exact attention for any score by online softmax over blocks (Rabe & Staats 2021; Dao et al.
2022), with a backward pass that recomputes the scores block by block.

For each block of queries, the keys are visited in blocks; per query the kernel keeps the
running maximum m, the running sum l and the running output o (REFERENCES.md). At the end
o / l is the context and L = m + log l the log-sum-exp, saved for the backward pass and for the
weights on demand, a = exp(s - L). Extra memory is O(Tq * Dv) plus one (block_q, block_k)
block of scores; the additive score's (Tq, Tk, hidden) tensor is never formed, because its
blocks come from the fused score (``fused.py``), or from torch operations over one block where
that is unavailable.

Blocks that the causal/window structure masks entirely are skipped, and so are blocks whose
user mask is all False. A query with no visible key gets context 0, L = -inf and zero gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..output import AttentionOutput
from ..scores import AdditiveParams
from . import fused
from .request import Request

BLOCK_Q = 256
BLOCK_K = 512


def supports(req: Request) -> bool:
    """Every score but "linear"; no dropout (its mask would have to be replayed per block); a
    callable score only under ``torch.no_grad()``: parameters it closes over are out of the
    kernel's reach, so their gradients could not be computed."""
    if req.dropout_p > 0 or req.score == "linear":
        return False
    if callable(req.score):
        return not torch.is_grad_enabled()
    return True


def _needs_grad(req: Request) -> bool:
    if not torch.is_grad_enabled():
        return False
    tensors = [req.q, req.k, req.v]
    if isinstance(req.params, Tensor):
        tensors.append(req.params)
    elif isinstance(req.params, tuple):
        tensors.extend(p for p in req.params if isinstance(p, Tensor))
    return any(t.requires_grad for t in tensors)


# -- scores, block by block ------------------------------------------------------------------------
@dataclass
class Core:
    """The score as the kernel sees it: ``fn(q_block, k_block, *params) -> (..., bq, bk)``.

    ``q``/``k`` may be projections of the user's q/k (computed once, outside the kernel, so
    autograd takes care of the projection weights); ``params`` are tensors the block score needs
    and must get gradients for.
    """

    q: Tensor
    k: Tensor
    params: tuple[Tensor, ...]
    fn: Callable[..., Tensor]


def _dot_fn(scale: float) -> Callable[..., Tensor]:
    return lambda qb, kb: (qb @ kb.transpose(-2, -1)) * scale


def _additive_torch(ab: Tensor, bb: Tensor, v: Tensor) -> Tensor:
    return torch.tanh(ab.unsqueeze(-2) + bb.unsqueeze(-3)) @ v


def _additive_fused(ab: Tensor, bb: Tensor, v: Tensor) -> Tensor:
    lead = ab.shape[:-2]
    s = fused.additive_block(ab.reshape(-1, *ab.shape[-2:]), bb.reshape(-1, *bb.shape[-2:]), v)
    return s.reshape(*lead, ab.shape[-2], bb.shape[-2])


def use_fused(dtype: torch.dtype, device: torch.device) -> bool:
    return device.type == "cpu" and dtype in (torch.float32, torch.float64) and fused.available()


def make_core(req: Request, dtype: torch.dtype) -> Core:
    """The block score for ``req``, computing in ``dtype``."""
    q, k = req.q.to(dtype), req.k.to(dtype)
    score, scale = req.score, req.scale
    if score == "dot":
        return Core(q, k, (), _dot_fn(1.0 if scale is None else scale))
    if score == "scaled_dot":
        return Core(q, k, (), _dot_fn(1.0 / math.sqrt(q.shape[-1]) if scale is None else scale))
    if score == "general":
        w = req.params.to(dtype)
        return Core(q @ w, k, (), _dot_fn(1.0 if scale is None else scale))
    if score == "additive":
        p = AdditiveParams(*req.params)
        a = q @ p.w_q.to(dtype).T
        b = k @ p.w_k.to(dtype).T
        if p.bias is not None:
            b = b + p.bias.to(dtype)
        block = _additive_fused if use_fused(dtype, q.device) else _additive_torch
        if scale is None:
            return Core(a, b, (p.v.to(dtype),), block)
        return Core(a, b, (p.v.to(dtype),), lambda ab, bb, v: block(ab, bb, v) * scale)
    fn = req.score_fn  # a callable: forward only (see supports)
    return Core(q, k, (), lambda qb, kb: fn(qb, kb).to(dtype))


# -- masks, block by block -------------------------------------------------------------------------
@dataclass
class Masking:
    """The causal/window structure (bottom-right aligned) and the user's mask."""

    tq: int
    tk: int
    upper: int | None  # keys with j - i - (Tk - Tq) > upper are masked (causal: 0)
    lower: int | None  # ... and those with j - i - (Tk - Tq) < lower (window: -left)
    mask: Tensor | None  # broadcastable to (..., Tq, Tk)
    device: torch.device | None = None

    @classmethod
    def of(cls, req: Request) -> Masking:
        upper = 0 if req.causal else None
        lower = None
        if req.window is not None:
            left, right = req.window
            if right is not None:
                upper = right if upper is None else min(upper, right)
            lower = None if left is None else -left
        return cls(req.tq, req.tk, upper, lower, req.mask, req.q.device)

    def block(self, rows: Tensor | slice, j0: int, j1: int) -> tuple[bool, Tensor | None]:
        """(skip, mask) for query rows ``rows`` and keys j0:j1; mask None = all visible."""
        off = self.tk - self.tq
        if isinstance(rows, slice):
            r0, r1 = rows.start, rows.stop
            rel_min, rel_max = j0 - (r1 - 1) - off, (j1 - 1) - r0 - off
            row_idx = None
        else:
            row_idx = rows
            rel_min = j0 - int(rows.max()) - off
            rel_max = (j1 - 1) - int(rows.min()) - off
        if (self.upper is not None and rel_min > self.upper) or (
            self.lower is not None and rel_max < self.lower
        ):
            return True, None
        out = None
        if (self.upper is not None and rel_max > self.upper) or (
            self.lower is not None and rel_min < self.lower
        ):
            device = self.device
            if row_idx is None:
                row_idx = torch.arange(rows.start, rows.stop, device=device)
            rel = torch.arange(j0, j1, device=device)[None, :] - row_idx[:, None] - off
            out = torch.ones_like(rel, dtype=torch.bool)
            if self.upper is not None:
                out &= rel <= self.upper
            if self.lower is not None:
                out &= rel >= self.lower
        if self.mask is not None:
            m = self.mask
            if m.shape[-2] != 1:
                m = m[..., rows, :]
            if m.shape[-1] != 1:
                m = m[..., j0:j1]
            if not bool(m.any()):
                return True, None
            out = m if out is None else m & out
        return False, out


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


# -- the kernel ------------------------------------------------------------------------------------
def _forward(core, masking, v, params, block_q, block_k) -> tuple[Tensor, Tensor]:
    q, k = core.q, core.k
    lead, acc = q.shape[:-2], v.dtype
    out = q.new_zeros((*lead, masking.tq, v.shape[-1]), dtype=acc)
    lse = q.new_full((*lead, masking.tq), float("-inf"), dtype=acc)
    for i0, i1 in _blocks(masking.tq, block_q):
        qb = q[..., i0:i1, :]
        m = q.new_full((*lead, i1 - i0), float("-inf"), dtype=acc)
        l = q.new_zeros((*lead, i1 - i0), dtype=acc)  # noqa: E741
        o = q.new_zeros((*lead, i1 - i0, v.shape[-1]), dtype=acc)
        for j0, j1 in _blocks(masking.tk, block_k):
            skip, mask = masking.block(slice(i0, i1), j0, j1)
            if skip:
                continue
            s = core.fn(qb, k[..., j0:j1, :], *params)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))
            shift = torch.where(torch.isneginf(m_new), 0.0, m_new)  # rows with nothing yet
            p = torch.exp(s - shift.unsqueeze(-1))
            alpha = torch.exp(m - shift)
            l = l * alpha + p.sum(dim=-1)  # noqa: E741
            o = o * alpha.unsqueeze(-1) + p @ v[..., j0:j1, :]
            m = m_new
        seen = l > 0
        out[..., i0:i1, :] = torch.where(
            seen.unsqueeze(-1), o / l.clamp_min(1e-30).unsqueeze(-1), 0
        )
        lse[..., i0:i1] = torch.where(seen, m + torch.log(l.clamp_min(1e-30)), float("-inf"))
    return out, lse


class _Chunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, setup, q, k, v, *params):
        fn, masking, block_q, block_k = setup
        core = Core(q, k, params, fn)
        out, lse = _forward(core, masking, v, params, block_q, block_k)
        ctx.setup = setup
        ctx.save_for_backward(q, k, v, out, lse, *params)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_lse):
        fn, masking, block_q, block_k = ctx.setup
        q, k, v, out, lse, *params = ctx.saved_tensors
        need = ctx.needs_input_grad[1:]  # q, k, v, *params
        acc = v.dtype
        d_out = torch.zeros_like(out) if d_out is None else d_out.to(acc)
        delta = (d_out * out).sum(dim=-1)  # (..., Tq): sum_j p_ij dP_ij
        if d_lse is not None:
            delta = delta - d_lse.to(acc)  # d lse_i / d s_ij = p_ij
        lse_b = torch.where(torch.isneginf(lse), float("inf"), lse)  # empty rows: p = 0
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dparams = [torch.zeros_like(p) for p in params]
        for j0, j1 in _blocks(masking.tk, block_k):
            kb_d, vb = k[..., j0:j1, :], v[..., j0:j1, :]
            for i0, i1 in _blocks(masking.tq, block_q):
                skip, mask = masking.block(slice(i0, i1), j0, j1)
                if skip:
                    continue
                with torch.enable_grad():
                    qb = q[..., i0:i1, :].detach().requires_grad_(need[0])
                    kb = kb_d.detach().requires_grad_(need[1])
                    ps = [
                        p.detach().requires_grad_(n) for p, n in zip(params, need[3:], strict=True)
                    ]
                    s = fn(qb, kb, *ps)
                sd = s.detach()
                if mask is not None:
                    sd = sd.masked_fill(~mask, float("-inf"))
                p = torch.exp(sd - lse_b[..., i0:i1, None])  # (..., bq, bk)
                g_out = d_out[..., i0:i1, :]
                if need[2]:
                    dv[..., j0:j1, :] += p.transpose(-2, -1) @ g_out
                ds = p * (g_out @ vb.transpose(-2, -1) - delta[..., i0:i1, None])
                wanted = [(t, slot) for t, slot, n in
                          ((qb, ("q", None), need[0]), (kb, ("k", None), need[1]),
                           *((pt, ("p", i), n) for i, (pt, n) in enumerate(zip(ps, need[3:],
                                                                              strict=True))))
                          if n]  # fmt: skip
                if not wanted:
                    continue
                grads = torch.autograd.grad(s, [t for t, _ in wanted], ds)
                for g, (_, (kind, idx)) in zip(grads, wanted, strict=True):
                    if kind == "q":
                        dq[..., i0:i1, :] += g
                    elif kind == "k":
                        dk[..., j0:j1, :] += g
                    else:
                        dparams[idx] += g
        return (None, dq if need[0] else None, dk if need[1] else None, dv if need[2] else None,
                *(d if n else None for d, n in zip(dparams, need[3:], strict=True)))  # fmt: skip


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def attention(
    req: Request, block_q: int | None = None, block_k: int | None = None
) -> tuple[Tensor, Tensor, Core, Masking]:
    """(context in the accumulation dtype, log-sum-exp (..., Tq), core, masking).

    Block sizes default to the module's BLOCK_Q and BLOCK_K.
    """
    block_q, block_k = block_q or BLOCK_Q, block_k or BLOCK_K
    acc = _acc_dtype(req.q.dtype)
    core = make_core(req, acc)
    masking = Masking.of(req)
    v = req.v.to(acc)
    setup = (core.fn, masking, block_q, block_k)
    if _needs_grad(req):
        out, lse = _Chunked.apply(setup, core.q, core.k, v, *core.params)
    else:
        with torch.no_grad():
            out, lse = _forward(core, masking, v, core.params, block_q, block_k)
    return out, lse, core, masking


def weights_from_lse(
    core: Core,
    masking: Masking,
    lse: Tensor,
    rows: Sequence[int] | Tensor | None = None,
    heads: Sequence[int] | Tensor | None = None,
    block_k: int | None = None,
) -> Tensor:
    """a = exp(s - L) for the selected query rows (and heads, dim -3), key block by key block.

    Memory is that of the weights returned: (..., rows, Tk). Differentiable when the inputs are.
    """
    q, k, params = core.q, core.k, core.params
    mask = masking.mask
    if heads is not None:
        heads = torch.as_tensor(heads, dtype=torch.long, device=q.device)
        q, k, lse = (
            q.index_select(-3, heads),
            k.index_select(-3, heads),
            lse.index_select(-2, heads),
        )
        if mask is not None:
            mask = _select_heads(mask, heads, q.dim())
    if rows is None:
        row_idx = torch.arange(masking.tq, device=q.device)
    else:
        row_idx = torch.as_tensor(rows, dtype=torch.long, device=q.device)
        q, lse = q.index_select(-2, row_idx), lse.index_select(-1, row_idx)
    block_k = block_k or BLOCK_K
    sub = Masking(masking.tq, masking.tk, masking.upper, masking.lower, mask, q.device)
    pieces = []
    for j0, j1 in _blocks(masking.tk, block_k):
        skip, m = sub.block(row_idx, j0, j1)
        if skip:
            pieces.append(q.new_zeros((*q.shape[:-1], j1 - j0)))
            continue
        s = core.fn(q, k[..., j0:j1, :], *params)
        w = torch.exp(s - torch.where(torch.isneginf(lse), float("inf"), lse).unsqueeze(-1))
        if m is not None:
            w = w.masked_fill(~m, 0.0)
        pieces.append(w)
    return torch.cat(pieces, dim=-1)


def _select_heads(mask: Tensor, heads: Tensor, ndim: int) -> Tensor:
    if mask.dim() < 3 or ndim < 4:
        return mask
    if mask.shape[-3] == 1:
        return mask
    return mask.index_select(-3, heads)


def run(req: Request) -> AttentionOutput:
    out, lse, core, masking = attention(req)
    weights = None
    if req.return_weights:
        weights = weights_from_lse(core, masking, lse, req.weights_rows, req.weights_heads)
        weights = weights.to(req.q.dtype)
    return AttentionOutput(out.to(req.q.dtype), weights)
