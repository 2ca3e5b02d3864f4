"""``attend``: the one entry point for score -> mask -> softmax -> weighted sum."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from .._ext.tracing import tracing
from . import masks
from .kernels import KERNELS, Request
from .output import AttentionOutput
from .scores import AdditiveParams, ScoreFn, get_score

__all__ = ["attend", "attend_heads", "ENV_IMPL", "resolve_impl"]

ENV_IMPL = "ATTNKIT_ATTENTION_IMPL"
_IMPLS = ("auto", *KERNELS)


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    score: str | ScoreFn = "scaled_dot",
    score_params: object = None,
    mask: Tensor | None = None,
    causal: bool = False,
    window: tuple[int | None, int | None] | None = None,
    scale: float | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    weights_rows: Sequence[int] | Tensor | None = None,
    weights_heads: Sequence[int] | Tensor | None = None,
    impl: str = "auto",
) -> AttentionOutput:
    """Attention of queries over key/value pairs: context = softmax(score(q, k) + M) v.

    Shapes: q (B, Tq, Dq) and k (B, Tk, Dk), v (B, Tk, Dv) for single-head attention, or
    (B, H, Tq, D) etc. for multi-head; the leading dimensions of q, k and v must be equal.

    Args:
        score: "dot" (Luong), "scaled_dot" (Vaswani, eq. 1), "general" (Luong; ``score_params``
            is W of shape (Dq, Dk)), "additive" (Bahdanau; ``score_params`` is
            ``AdditiveParams(w_q, w_k, v[, bias])``), a callable ``f(q, k) -> (..., Tq, Tk)``
            that works on any block of queries and keys, or "linear" (Katharopoulos et al.
            2020: phi(q).phi(k) normalised, phi = elu + 1, instead of the softmax).
        mask: bool, True = may attend, broadcastable to (..., Tq, Tk).
        causal: query i sees keys j <= i + (Tk - Tq) (bottom-right aligned).
        window: (left, right): keep keys with i - left <= j <= i + right after the same
            alignment; either side may be None (unbounded).
        scale: replaces 1/sqrt(D) for "scaled_dot"; multiplies the logits of other scores.
        dropout_p: dropout on the weights; pass 0 when not training (layers do this).
        return_weights: also return the (..., Tq, Tk) weights (before dropout). The sdpa and
            chunked kernels compute them from the log-sum-exp of their fast pass.
        weights_rows: return the weights of these query rows only: (..., len(rows), Tk).
        weights_heads: ... and of these heads only (dim -3 of 4-D inputs). With both, a long
            sequence can be inspected without a (Tq, Tk) matrix per head.
        impl: "auto", "eager", "sdpa", "chunked" or "linear". "auto" takes sdpa for dot-product
            scores ("general" included, as (q W) . k), chunked for large additive or callable
            scores and eager for small ones (see ``resolve_impl``). An explicit impl that cannot
            serve the request (sdpa with an additive score) raises ValueError saying why. The
            environment variable ATTNKIT_ATTENTION_IMPL forces a kernel everywhere it can
            serve; elsewhere the call falls back to eager (to linear for "linear"), so a whole
            model can run under a forced kernel.

    Returns:
        AttentionOutput(context (..., Tq, Dv), weights (..., Tq, Tk) or None). A query whose
        keys are all masked gets context 0 and weights 0.

    Raises:
        ValueError: on mismatched shapes, dtypes, a bad mask, empty sequences or an unknown
            score / impl.

    Example:
        >>> q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 32)
        >>> out = attend(q, k, v, mask=masks.padding(torch.tensor([7, 3]))[:, None, :],
        ...              return_weights=True)
        >>> out.context.shape, out.weights.shape
        (torch.Size([2, 5, 32]), torch.Size([2, 5, 7]))
    """
    _check_inputs(q, k, v, score, score_params)
    scores_shape = (*q.shape[:-1], k.shape[-2])
    if mask is not None:
        masks.check_mask(mask, scores_shape)
        if mask.dim() < 2:  # a 0-D or 1-D mask broadcasts as (1, 1) or (1, Tk): say so once
            mask = mask.reshape((1,) * (2 - mask.dim()) + tuple(mask.shape))
    _check_window(window)
    if not isinstance(causal, bool):
        raise ValueError(f"causal must be True or False, got {causal!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)):
        raise ValueError(f"scale must be a number or None, got {scale!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    rows = _index("weights_rows", weights_rows, q.shape[-2])
    heads = _index("weights_heads", weights_heads, q.shape[-3] if q.dim() == 4 else None)
    return _clean(
        lambda k, v: _dispatch(
            q,
            k,
            v,
            score,
            score_params,
            scale,
            mask,
            causal,
            window,
            dropout_p,
            return_weights,
            rows,
            heads,
            impl,
        ),
        k,
        v,
        mask,
    )


def _clean(run, k: Tensor, v: Tensor, mask: Tensor | None) -> AttentionOutput:
    """``run(k, v)``, again with the masked keys zeroed where its result is not finite and
    some key is masked for every query: a NaN or inf at a padded position must reach no
    output, and checking the (small) result costs less than copying k and v on every call (a
    decoder's step reads its whole memory). A traced graph (export, compilation) cannot
    branch on values: it zeroes the masked keys always."""
    if mask is not None and tracing():
        return run(*masked_keys_zeroed(k, v, mask, always=True))
    out = run(k, v)
    if mask is None or (
        bool(out.context.isfinite().all())
        and (out.weights is None or bool(out.weights.isfinite().all()))
    ):
        return out
    zk, zv = masked_keys_zeroed(k, v, mask)
    return out if zk is k else run(zk, zv)


def masked_keys_zeroed(
    k: Tensor, v: Tensor, mask: Tensor, always: bool = False
) -> tuple[Tensor, Tensor]:
    """``k`` and ``v`` with the keys that no query may attend to (padding) set to 0: a weight
    of 0 times a NaN or inf there would still be NaN, and a masked input must reach no output.
    ``mask`` (..., Tq, Tk), True = may attend, broadcastable against the scores. Without
    ``always``, k and v themselves when no key is masked."""
    dead = ~mask.any(dim=-2)  # (..., Tk): keys masked for every query
    if not always and not bool(dead.any()):  # nothing padded: no copy of k and v
        return k, v
    dead = dead[..., None]  # (..., Tk, 1), against k (..., Tk, Dk) and v (..., Tk, Dv)
    zero = torch.zeros((), dtype=k.dtype, device=k.device)
    return torch.where(dead, zero, k), torch.where(dead, zero.to(v.dtype), v)


def attend_heads(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    weights_rows: Sequence[int] | Tensor | None = None,
    weights_heads: Sequence[int] | Tensor | None = None,
    finite: bool | None = None,
) -> AttentionOutput:
    """``attend(q, k, v, score="scaled_dot", ...)`` for a layer that made q (B, H, Tq, D) and
    k, v (B, H, Tk, D) itself by projecting checked inputs, and checked ``mask`` against
    (B, H, Tq, Tk) (``layers.base.layer_mask`` does). It skips the checks those guarantee,
    which a decoding step would otherwise repeat for every layer and token; the kernel, the
    results and ATTNKIT_ATTENTION_IMPL are those of :func:`attend`. ``finite``: whether q
    and k are known free of NaN and inf (None: unknown, a kernel that needs to know checks)."""
    if not isinstance(causal, bool):
        raise ValueError(f"causal must be True or False, got {causal!r}")
    if mask is not None and mask.dim() < 2:  # as in attend: (1, 1) or (1, Tk)
        mask = mask.reshape((1,) * (2 - mask.dim()) + tuple(mask.shape))
    rows = heads = None
    if return_weights:
        rows = _index("weights_rows", weights_rows, q.shape[-2])
        heads = _index("weights_heads", weights_heads, q.shape[-3])
    return _clean(
        lambda k, v: _dispatch(
            q,
            k,
            v,
            "scaled_dot",
            None,
            None,
            mask,
            causal,
            None,
            dropout_p,
            return_weights,
            rows,
            heads,
            "auto",
            finite,
        ),
        k,
        v,
        mask,
    )


def _dispatch(
    q,
    k,
    v,
    score,
    score_params,
    scale,
    mask,
    causal,
    window,
    dropout_p,
    return_weights,
    rows,
    heads,
    impl,
    finite=None,
) -> AttentionOutput:
    """Run a checked call on the kernel that serves it."""
    if causal and q.shape[-2] == 1:  # one query, bottom-right aligned, sees every key
        causal = False
    req = Request(
        q=q,
        k=k,
        v=v,
        score=score,
        score_fn=_linear_unsupported
        if score == "linear"
        else get_score(score, score_params, scale),
        scale=scale,
        mask=mask,
        causal=causal,
        window=tuple(window) if window is not None else None,
        dropout_p=dropout_p,
        return_weights=return_weights,
        params=score_params,
        weights_rows=rows,
        weights_heads=heads,
        finite=finite,
    )
    return KERNELS[resolve_impl(impl, req)].run(req)


def resolve_impl(impl: str, req: Request) -> str:
    """The kernel that serves ``req``: ATTNKIT_ATTENTION_IMPL where it can (else eager, or
    linear for "linear"), else ``impl`` (ValueError if it cannot), else the fastest."""
    if impl not in _IMPLS:
        raise ValueError(f"unknown impl {impl!r}; expected one of {_IMPLS}")
    forced = os.environ.get(ENV_IMPL, "").strip().lower()
    if forced:
        if forced not in KERNELS:
            raise ValueError(f"{ENV_IMPL}={forced!r} is not one of {tuple(KERNELS)}")
        if KERNELS[forced].unsupported(req) is None:
            return forced
        return "linear" if req.score == "linear" else "eager"
    if impl == "auto":
        return _auto(req)
    why = KERNELS[impl].unsupported(req)
    if why is not None:
        raise ValueError(f'impl="{impl}" cannot serve this call: {why}; use impl="auto"')
    return impl


# Below these many score entries (times the hidden size, for additive) per call, eager's few
# large operations beat the chunked kernel's loop over blocks.
_SMALL_SCORES = 1 << 16
_SMALL_ADDITIVE = 1 << 20


def _auto(req: Request) -> str:
    """The fastest exact kernel for ``req``, by score, size, weights, dropout and grad mode."""
    if req.score == "linear":
        return "linear"
    n = req.q.numel() // req.q.shape[-1] * req.tk  # score entries: (...) * Tq * Tk
    if req.score in ("dot", "scaled_dot", "general"):
        # Weights cost the fused path a second pass over the scores; eager has them already.
        small = n < _SMALL_SCORES
        return "eager" if req.return_weights and small else "sdpa"
    if req.dropout_p > 0:
        return "eager"
    if req.score == "additive":
        hidden = AdditiveParams(*req.params).v.shape[-1]
        return "eager" if n * hidden < _SMALL_ADDITIVE else "chunked"
    chunked_ok = KERNELS["chunked"].unsupported(req) is None
    return "chunked" if n >= _SMALL_SCORES and chunked_ok else "eager"


def _check_window(window: object) -> None:
    """ValueError unless ``window`` is None or (left, right), each an int >= 0 or None."""
    if window is None:
        return
    if not isinstance(window, tuple | list) or len(window) != 2:
        raise ValueError(f"window must be a (left, right) pair, got {window!r}")
    for side, val in zip(("left", "right"), window, strict=True):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
            raise ValueError(f"window {side} must be an int >= 0 or None, got {val!r}")


def _linear_unsupported(q: Tensor, k: Tensor) -> Tensor:
    raise ValueError('score="linear" has no softmax logits; it is served by the linear kernel')


def _index(name: str, value: object, size: int | None) -> Tensor | None:
    """Validate a weights_rows / weights_heads selection; return it as a 1-D long tensor."""
    if value is None:
        return None
    if size is None:
        raise ValueError(f"{name} needs 4-D (B, H, T, D) inputs")
    idx = torch.as_tensor(value)
    if idx.dim() != 1 or idx.dtype.is_floating_point or idx.dtype == torch.bool or not len(idx):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integer indices")
    if int(idx.min()) < -size or int(idx.max()) >= size:
        raise ValueError(f"{name} has an index outside [0, {size})")
    return torch.where(idx < 0, idx + size, idx).long()


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, score: object, params: object) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
        if len(t.shape) not in (3, 4):
            raise ValueError(
                f"{name} must be (B, T, D) or (B, H, T, D), got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {t.dtype}")
    qs, ks, vs = q.shape, k.shape, v.shape  # each read once: a decoding step checks often
    if not (len(qs) == len(ks) == len(vs)):
        raise ValueError(
            f"q, k, v must have the same number of dims, got {tuple(qs)}, {tuple(ks)}, {tuple(vs)}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not (qs[:-2] == ks[:-2] == vs[:-2]):
        raise ValueError(
            f"batch/head dims of q, k, v differ: {tuple(qs[:-2])}, {tuple(ks[:-2])}, "
            f"{tuple(vs[:-2])}"
        )
    if ks[-2] != vs[-2]:
        raise ValueError(f"k and v must have the same length Tk, got {ks[-2]} and {vs[-2]}")
    if qs[-2] == 0 or ks[-2] == 0:
        raise ValueError(f"empty sequence: Tq={qs[-2]}, Tk={ks[-2]}; need >= 1")
    if 0 in (qs[-1], ks[-1], vs[-1]):
        raise ValueError(f"feature dims must be >= 1, got Dq={qs[-1]}, Dk={ks[-1]}, Dv={vs[-1]}")
    _check_score_dims(q, k, score, params)


def _check_score_dims(q: Tensor, k: Tensor, score: object, params: object) -> None:
    dq, dk = q.shape[-1], k.shape[-1]
    if score in ("dot", "scaled_dot", "linear") and dq != dk:
        raise ValueError(f'score="{score}" needs q and k of equal dim D, got Dq={dq}, Dk={dk}')
    if score == "general" and isinstance(params, Tensor) and tuple(params.shape) != (dq, dk):
        raise ValueError(
            f"general weight must be (Dq, Dk) = ({dq}, {dk}), got {tuple(params.shape)}"
        )
    if score == "additive" and isinstance(params, tuple):
        p = AdditiveParams(*params)
        hd = p.v.shape[-1]
        want = {"w_q": (hd, dq), "w_k": (hd, dk)}
        for name, shape in want.items():
            got = tuple(getattr(p, name).shape)
            if got != shape:
                raise ValueError(f"additive {name} must be (Hd, D) = {shape}, got {got}")
        if q.dtype != p.w_q.dtype:
            raise ValueError(f"additive params dtype {p.w_q.dtype} differs from q's {q.dtype}")
