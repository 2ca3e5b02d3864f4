"""``attend``: the one entry point for score -> mask -> softmax -> weighted sum."""

from __future__ import annotations

import os

from torch import Tensor

from . import masks
from .kernels import KERNELS, Request
from .output import AttentionOutput
from .scores import AdditiveParams, ScoreFn, get_score

__all__ = ["attend", "ENV_IMPL", "resolve_impl"]

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
    impl: str = "auto",
) -> AttentionOutput:
    """Attention of queries over key/value pairs: context = softmax(score(q, k) + M) v.

    Shapes: q (B, Tq, Dq) and k (B, Tk, Dk), v (B, Tk, Dv) for single-head attention, or
    (B, H, Tq, D) etc. for multi-head; the leading dimensions of q, k and v must be equal.

    Args:
        score: "dot" (Luong), "scaled_dot" (Vaswani, eq. 1), "general" (Luong; ``score_params``
            is W of shape (Dq, Dk)), "additive" (Bahdanau; ``score_params`` is
            ``AdditiveParams(w_q, w_k, v[, bias])``), or a callable ``f(q, k) -> (..., Tq, Tk)``.
        mask: bool, True = may attend, broadcastable to (..., Tq, Tk).
        causal: query i sees keys j <= i + (Tk - Tq) (bottom-right aligned).
        window: (left, right): keep keys with i - left <= j <= i + right after the same
            alignment; either side may be None (unbounded).
        scale: replaces 1/sqrt(D) for "scaled_dot"; multiplies the logits of other scores.
        dropout_p: dropout on the weights; pass 0 when not training (layers do this).
        return_weights: also return the (..., Tq, Tk) weights (before dropout).
        impl: "auto", "eager" or "sdpa"; the environment variable ATTNKIT_ATTENTION_IMPL
            overrides it. A kernel that cannot serve a request (sdpa with an additive score)
            falls back to eager.

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
    if window is not None and (not isinstance(window, tuple | list) or len(window) != 2):
        raise ValueError(f"window must be a (left, right) pair, got {window!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    req = Request(
        q=q,
        k=k,
        v=v,
        score=score,
        score_fn=get_score(score, score_params, scale),
        scale=scale,
        mask=mask,
        causal=causal,
        window=tuple(window) if window is not None else None,
        dropout_p=dropout_p,
        return_weights=return_weights,
    )
    return KERNELS[resolve_impl(impl, req)].run(req)


def resolve_impl(impl: str, req: Request) -> str:
    """The kernel that serves ``req``: ATTNKIT_ATTENTION_IMPL, else ``impl``, else the fastest."""
    forced = os.environ.get(ENV_IMPL, "").strip().lower()
    if forced:
        if forced not in KERNELS:
            raise ValueError(f"{ENV_IMPL}={forced!r} is not one of {tuple(KERNELS)}")
        impl = forced
    if impl not in _IMPLS:
        raise ValueError(f"unknown impl {impl!r}; expected one of {_IMPLS}")
    if impl == "auto":
        # Returning weights costs the fused path a second pass; eager already has them.
        impl = "eager" if req.return_weights else "sdpa"
    return impl if KERNELS[impl].supports(req) else "eager"


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, score: object, params: object) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
        if t.dim() not in (3, 4):
            raise ValueError(
                f"{name} must be (B, T, D) or (B, H, T, D), got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {t.dtype}")
    if not (q.dim() == k.dim() == v.dim()):
        raise ValueError(
            f"q, k, v must have the same number of dims, got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            "batch/head dims of q, k, v differ: "
            f"{tuple(q.shape[:-2])}, {tuple(k.shape[:-2])}, {tuple(v.shape[:-2])}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same length Tk, got {k.shape[-2]} and {v.shape[-2]}"
        )
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        raise ValueError(f"empty sequence: Tq={q.shape[-2]}, Tk={k.shape[-2]}; need >= 1")
    _check_score_dims(q, k, score, params)


def _check_score_dims(q: Tensor, k: Tensor, score: object, params: object) -> None:
    dq, dk = q.shape[-1], k.shape[-1]
    if score in ("dot", "scaled_dot") and dq != dk:
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
