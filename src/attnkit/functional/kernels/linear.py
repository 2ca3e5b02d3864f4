"""Linear attention, Katharopoulos et al. 2020 (arXiv:2006.16236), feature map elu(x) + 1.

The softmax kernel exp(q . k) is replaced by phi(q) . phi(k), so the weights of query i are
a_ij = phi(q_i) . phi(k_j) / sum_j' phi(q_i) . phi(k_j') and the context needs no (Tq, Tk)
matrix:

    non-causal: c_i = phi(q_i)^T S / phi(q_i)^T z,  S = sum_j phi(k_j) v_j^T,  z = sum_j phi(k_j);
    causal:     the same with prefix sums S_i, z_i over j <= i + (Tk - Tq) (bottom-right, as
                every causal mask here), computed chunk by chunk: within a chunk the
                (chunk, chunk) products, across chunks the running (S, z). Time O(T C D + T D^2).

``recurrent_step`` is the same causal attention one token at a time ("fast weights"), the form
used for decoding. This is a different attention, not an approximation of softmax attention:
``score="linear"`` selects it, and every other score keeps the softmax.

Masks: a key padding mask (one that does not vary over queries) removes keys from the sums.
A mask that varies per query, or ``return_weights=True``, uses the explicit (Tq, Tk) form.
Windows are not supported. A query with no visible key gets context 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import masks
from ..output import AttentionOutput
from .request import Request, acc_dtype

CHUNK = 64


def feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020, eq. 7)."""
    return F.elu(x) + 1.0


def unsupported(req: Request) -> str | None:
    """Why the linear kernel cannot serve ``req`` (a softmax score), or None."""
    if req.score == "linear":
        return None
    return f'it computes score="linear" only, not score={req.score!r}'


def _divide(num: Tensor, den: Tensor) -> Tensor:
    """num / den per row, 0 where den == 0 (no visible key)."""
    ok = den > 0
    return torch.where(ok.unsqueeze(-1), num / torch.where(ok, den, 1.0).unsqueeze(-1), 0.0)


def _key_mask(mask: Tensor | None) -> tuple[bool, Tensor | None]:
    """(query-independent?, key mask (..., Tk) or None)."""
    if mask is None:
        return True, None
    if mask.dim() >= 2 and mask.shape[-2] != 1:
        return False, None
    return True, mask[..., 0, :] if mask.dim() >= 2 else mask


def quadratic_weights(req: Request, fq: Tensor, fk: Tensor) -> Tensor:
    """The explicit weights a_ij (..., Tq, Tk) under the full mask: O(Tq Tk) memory."""
    kernel = fq @ fk.transpose(-2, -1)
    full = req.full_mask()
    if full is not None:
        kernel = kernel.masked_fill(~full, 0.0)
    return _divide(kernel, kernel.sum(dim=-1))


def causal_num_den(
    fq: Tensor,
    fk: Tensor,
    v: Tensor,
    state: Tensor | None = None,
    z: Tensor | None = None,
    chunk: int = CHUNK,
) -> tuple[Tensor, Tensor]:
    """Causal numerators (..., T, Dv) and denominators (..., T) of equal-length features
    (fq, fk through phi already), chunk by chunk, starting from the state (S, z) of keys that
    every query sees (None: no such keys)."""
    t = fq.shape[-2]
    if state is None or z is None:
        state = fq.new_zeros((*fq.shape[:-2], fq.shape[-1], v.shape[-1]))  # S: (..., D, Dv)
        z = fq.new_zeros((*fq.shape[:-2], fq.shape[-1]))  # (..., D)
    tril = masks.causal(min(chunk, t), device=fq.device)
    nums, dens = [], []
    for s in range(0, t, chunk):
        e = min(t, s + chunk)
        qc, kc, vc = fq[..., s:e, :], fk[..., s:e, :], v[..., s:e, :]
        intra = (qc @ kc.transpose(-2, -1)).masked_fill(~tril[: e - s, : e - s], 0.0)
        nums.append(qc @ state + intra @ vc)
        dens.append((qc @ z.unsqueeze(-1)).squeeze(-1) + intra.sum(dim=-1))
        state = state + kc.transpose(-2, -1) @ vc
        z = z + kc.sum(dim=-2)
    return torch.cat(nums, dim=-2), torch.cat(dens, dim=-1)


def recurrent_step(
    q: Tensor, k: Tensor, v: Tensor, state: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One causal step: q, k (..., D), v (..., Dv) of the new token; state (S, z) of the ones
    before, or None at the start. Returns (context (..., Dv), new state). The step's own key is
    included, as in the causal parallel form."""
    fq, fk = feature_map(q), feature_map(k)
    if state is None:
        s_prev = fq.new_zeros((*fq.shape[:-1], fq.shape[-1], v.shape[-1]))
        z_prev = fq.new_zeros(fq.shape)
    else:
        s_prev, z_prev = state
    s_new = s_prev + fk.unsqueeze(-1) * v.unsqueeze(-2)  # S + phi(k) v^T
    z_new = z_prev + fk
    num = (fq.unsqueeze(-2) @ s_new).squeeze(-2)
    den = (fq * z_new).sum(dim=-1)
    return _divide(num, den), (s_new, z_new)


def run(req: Request) -> AttentionOutput:
    if req.window is not None:
        raise ValueError("linear attention does not support window=; use causal= or a mask")
    acc = acc_dtype(req.q.dtype)
    fq, fk, v = feature_map(req.q.to(acc)), feature_map(req.k.to(acc)), req.v.to(acc)
    key_only, key_mask = _key_mask(req.mask)
    weights = None
    if req.return_weights or not key_only:
        full = quadratic_weights(req, fq, fk)
        context = full @ v
        if req.return_weights:
            weights = req.select_weights(full).to(req.q.dtype)
        return AttentionOutput(context.to(req.q.dtype), weights)
    if key_mask is not None:  # masked keys leave both sums, whatever they hold (NaN, inf)
        gone = ~key_mask.unsqueeze(-1)
        fk, v = fk.masked_fill(gone, 0.0), v.masked_fill(gone, 0.0)
    if not req.causal:
        kv = fk.transpose(-2, -1) @ v  # (..., D, Dv)
        z = fk.sum(dim=-2)  # (..., D)
        context = _divide(fq @ kv, (fq @ z.unsqueeze(-1)).squeeze(-1))
        return AttentionOutput(context.to(req.q.dtype), None)
    off = req.tk - req.tq
    if off >= 0:  # keys before the first query's position are visible to every query
        head = fk[..., :off, :]
        num, den = causal_num_den(
            fq,
            fk[..., off:, :],
            v[..., off:, :],
            head.transpose(-2, -1) @ v[..., :off, :],
            head.sum(dim=-2),
        )
        context = _divide(num, den)
    else:  # the first -off queries see no key at all
        num, den = causal_num_den(fq[..., -off:, :], fk, v)
        seen = _divide(num, den)
        context = torch.cat([seen.new_zeros((*seen.shape[:-2], -off, seen.shape[-1])), seen], -2)
    return AttentionOutput(context.to(req.q.dtype), None)
