"""Exact attention for any score by online softmax over blocks (Rabe & Staats 2021; Dao et al.
2022), with a backward pass that recomputes the scores block by block.

For each block of queries, the keys are visited in blocks; per query the kernel keeps the
running maximum m, the running sum l and the running output o (REFERENCES.md). At the end
o / l is the context and L = m + log l the log-sum-exp, saved for the backward pass and for the
weights on demand, a = exp(s - L). Extra memory is O(Tq * Dv) plus one (block_q, block_k)
block of scores; the additive score's (Tq, Tk, hidden) tensor is never formed, because its
blocks come from the fused score (``attnkit._ext.additive``), or from torch operations over one
block where that is unavailable.

Blocks that the causal/window structure masks entirely are skipped, and so are blocks whose
user mask is all False. A query with no visible key gets context 0, L = -inf and zero gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from ..._ext import additive as fused
from ..output import AttentionOutput
from ..scores import AdditiveParams, additive_projected, project_keys, scaled_dot
from .request import Request, acc_dtype, pick

BLOCK_Q = 256
BLOCK_K = 512


def unsupported(req: Request) -> str | None:
    """Every score but "linear"; no dropout (its mask would have to be replayed per block); a
    callable score only under ``torch.no_grad()``: parameters it closes over are out of the
    kernel's reach, so their gradients could not be computed. Returns why not, or None."""
    if req.score == "linear":
        return 'score="linear" has no softmax to chunk (use impl="linear")'
    if req.dropout_p > 0:
        return "it takes no attention dropout"
    if callable(req.score) and torch.is_grad_enabled():
        return "a callable score needs gradients it cannot reach; call it under torch.no_grad()"
    return None


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


def _additive_fused(ab: Tensor, bb: Tensor, v: Tensor) -> Tensor:
    lead = ab.shape[:-2]  # (B, H) or (B,): the compiled block takes one flat batch dimension
    # ab (..., bq, A) -> (N, bq, A); bb (..., bk, A) -> (N, bk, A); scores (N, bq, bk)
    s = fused.additive_block(ab.reshape(-1, *ab.shape[-2:]), bb.reshape(-1, *bb.shape[-2:]), v)
    return s.reshape(*lead, ab.shape[-2], bb.shape[-2])  # (..., bq, bk)


def use_fused(dtype: torch.dtype, device: torch.device) -> bool:
    return device.type == "cpu" and dtype in (torch.float32, torch.float64) and fused.available()


def make_core(req: Request, dtype: torch.dtype) -> Core:
    """The block score for ``req``, computing in ``dtype``."""
    q, k = req.q.to(dtype), req.k.to(dtype)
    score, scale = req.score, req.scale
    if score in ("dot", "scaled_dot"):
        return Core(q, k, (), req.score_fn)
    if score == "general":  # (q W) . k: W's gradient flows through the projection
        return Core(
            q @ req.params.to(dtype),
            k,
            (),
            partial(scaled_dot, scale=1.0 if scale is None else scale),
        )
    if score == "additive":  # W q and U k + b once, outside the kernel; v per block
        p = AdditiveParams(*(None if t is None else t.to(dtype) for t in req.params))  # type: ignore[arg-type]  # bias may be None
        block = _additive_fused if use_fused(dtype, q.device) else additive_projected
        additive = block if scale is None else (lambda ab, bb, v: block(ab, bb, v) * scale)
        return Core(q @ p.w_q.T, project_keys(k, p), (p.v,), additive)
    user = req.score_fn  # a callable: forward only (see unsupported)
    return Core(q, k, (), lambda qb, kb: user(qb, kb).to(dtype))


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
        row_idx: Tensor | None
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
                assert isinstance(rows, slice)
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
def _for_exp(lse: Tensor) -> Tensor:
    """L with -inf (rows that see no key) turned to +inf, so that exp(s - L) is 0 there."""
    return torch.where(torch.isneginf(lse), float("inf"), lse)


def _forward(core: Core, masking: Masking, v: Tensor, block_q: int, block_k: int):
    """(context (..., Tq, Dv), log-sum-exp (..., Tq)) by online softmax (Milakov & Gimelshein
    2018; Dao et al. 2022, Algorithm 1): for each block of queries, a running maximum m, a
    running sum l of exp(s - m) and a running weighted sum o of values are updated key block
    by key block, rescaled by exp(m_old - m_new) whenever the maximum grows, so no (Tq, Tk)
    matrix is ever held. Leading dimensions "..." are (B, H) or (B,)."""
    q, k, params = core.q, core.k, core.params  # q (..., Tq, D), k (..., Tk, D)
    lead, acc = q.shape[:-2], v.dtype
    out = q.new_zeros((*lead, masking.tq, v.shape[-1]), dtype=acc)  # (..., Tq, Dv)
    lse = q.new_full((*lead, masking.tq), float("-inf"), dtype=acc)  # (..., Tq)
    for i0, i1 in _blocks(masking.tq, block_q):
        qb = q[..., i0:i1, :]  # (..., bq, D)
        m = q.new_full((*lead, i1 - i0), float("-inf"), dtype=acc)  # (..., bq) running max
        l = q.new_zeros((*lead, i1 - i0), dtype=acc)  # noqa: E741  (..., bq) running sum
        o = q.new_zeros((*lead, i1 - i0, v.shape[-1]), dtype=acc)  # (..., bq, Dv) unnormalised
        visible = torch.zeros((*lead, i1 - i0), dtype=torch.bool, device=q.device)  # (..., bq)
        all_visible = False  # some block had no mask: every row of this query block sees a key
        for j0, j1 in _blocks(masking.tk, block_k):
            skip, mask = masking.block(slice(i0, i1), j0, j1)
            if skip:
                continue
            s = core.fn(qb, k[..., j0:j1, :], *params)  # (..., bq, bk) scores
            if mask is not None:  # (..., bq, bk) or broadcastable, True = may attend
                s = s.masked_fill(~mask, float("-inf"))
                if not all_visible:
                    visible = visible | mask.any(dim=-1)
            else:
                all_visible = True
            m_new = torch.maximum(m, s.amax(dim=-1))  # (..., bq)
            shift = torch.where(torch.isneginf(m_new), 0.0, m_new)  # rows with nothing yet
            p = torch.exp(s - shift.unsqueeze(-1))  # (..., bq, bk) = exp(s - m_new)
            alpha = torch.exp(m - shift)  # (..., bq) = exp(m_old - m_new): rescales the old
            l = l * alpha + p.sum(dim=-1)  # noqa: E741  (..., bq)
            o = o * alpha.unsqueeze(-1) + p @ v[..., j0:j1, :]  # (..., bq, Dv)
            m = m_new
        # Only a row that no mask lets see any key gets 0. A row that sees keys divides as
        # eager's softmax does: NaN or infinite scores (from NaN or inf inputs) give NaN, never
        # a silent 0 (l is 0 or NaN there).
        visible = torch.ones_like(l, dtype=torch.bool) if all_visible else visible.expand_as(l)
        out[..., i0:i1, :] = torch.where(
            visible.unsqueeze(-1), o / l.unsqueeze(-1), 0
        )  # (.., bq, Dv)
        row_lse = torch.where(l == 0, float("nan"), m + torch.log(l))  # l = 0: all scores -inf
        lse[..., i0:i1] = torch.where(visible, row_lse, float("-inf"))  # (..., bq) = log sum exp s
    return out, lse


class _Chunked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, setup, q, k, v, *params):
        fn, masking, block_q, block_k = setup
        out, lse = _forward(Core(q, k, params, fn), masking, v, block_q, block_k)
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
        lse_b = _for_exp(lse)
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dparams = [torch.zeros_like(p) for p in params]
        for j0, j1 in _blocks(masking.tk, block_k):  # P is recomputed from L, never stored
            kb_d, vb = k[..., j0:j1, :], v[..., j0:j1, :]  # (..., bk, D), (..., bk, Dv)
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
                g_out = d_out[..., i0:i1, :]  # (..., bq, Dv)
                if need[2]:  # dV = P^T dO: (..., bk, bq) @ (..., bq, Dv) -> (..., bk, Dv)
                    dv[..., j0:j1, :] += p.transpose(-2, -1) @ g_out
                # dS = P * (dO V^T - delta): (..., bq, Dv) @ (..., Dv, bk) -> (..., bq, bk)
                ds = p * (g_out @ vb.transpose(-2, -1) - delta[..., i0:i1, None])
                flags = (need[0], need[1], *need[3:])  # q, k, params: not v
                chosen = [t for t, n in zip((qb, kb, *ps), flags, strict=True) if n]
                if not chosen:
                    continue
                grads = iter(torch.autograd.grad(s, chosen, ds))
                if need[0]:
                    dq[..., i0:i1, :] += next(grads)
                if need[1]:
                    dk[..., j0:j1, :] += next(grads)
                for d, n in zip(dparams, need[3:], strict=True):
                    if n:
                        d += next(grads)
        return (
            None,
            dq if need[0] else None,
            dk if need[1] else None,
            dv if need[2] else None,
            *(d if n else None for d, n in zip(dparams, need[3:], strict=True)),
        )


def attention(
    req: Request, block_q: int | None = None, block_k: int | None = None
) -> tuple[Tensor, Tensor, Core, Masking]:
    """(context in the accumulation dtype, log-sum-exp (..., Tq), core, masking).

    Block sizes default to the module's BLOCK_Q and BLOCK_K.
    """
    block_q, block_k = block_q or BLOCK_Q, block_k or BLOCK_K
    acc = acc_dtype(req.q.dtype)
    core = make_core(req, acc)
    masking = Masking.of(req)
    v = req.v.to(acc)
    setup = (core.fn, masking, block_q, block_k)
    if _needs_grad(req):
        out, lse = _Chunked.apply(setup, core.q, core.k, v, *core.params)
    else:
        with torch.no_grad():
            out, lse = _forward(core, masking, v, block_q, block_k)
    return out, lse, core, masking


def weights_from_lse(
    core: Core,
    masking: Masking,
    lse: Tensor,
    rows: Tensor | None = None,
    heads: Tensor | None = None,
    block_k: int | None = None,
) -> Tensor:
    """a = exp(s - L) for the selected query rows (and heads, dim -3), key block by key block.

    Memory is that of the weights returned: (..., rows, Tk). Differentiable when the inputs are.
    """
    q, k, lse = pick(core.q, heads, -3), pick(core.k, heads, -3), pick(lse, heads, -2)
    sub = Masking(
        masking.tq,
        masking.tk,
        masking.upper,
        masking.lower,
        pick(masking.mask, heads, -3),
        q.device,
    )
    row_idx = torch.arange(masking.tq, device=q.device) if rows is None else rows.to(q.device)
    q, lse = pick(q, rows, -2), _for_exp(pick(lse, rows, -1)).unsqueeze(-1)
    pieces = []
    for j0, j1 in _blocks(masking.tk, block_k or BLOCK_K):
        skip, m = sub.block(row_idx, j0, j1)
        if skip:
            pieces.append(q.new_zeros((*q.shape[:-1], j1 - j0)))
            continue
        w = torch.exp(core.fn(q, k[..., j0:j1, :], *core.params) - lse)
        pieces.append(w if m is None else w.masked_fill(~m, 0.0))  # (..., rows, bk)
    return torch.cat(pieces, dim=-1)  # (..., rows, Tk)


def run(req: Request) -> AttentionOutput:
    out, lse, core, masking = attention(req)
    weights = None
    if req.return_weights:
        weights = weights_from_lse(core, masking, lse, req.weights_rows, req.weights_heads)
        weights = weights.to(req.q.dtype)
    return AttentionOutput(out.to(req.q.dtype), weights)
