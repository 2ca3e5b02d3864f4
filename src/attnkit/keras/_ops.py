"""What every Keras layer here shares, in ``keras.ops`` only (JAX, TensorFlow and PyTorch
backends alike): attnkit's mask rules and the masked softmax whose fully masked rows are 0."""

from __future__ import annotations

from typing import Any

from keras import ops


def _fill(dtype: Any) -> float:
    """A score that loses every softmax against a real one, in range for ``dtype``."""
    return -6.0e4 if "float16" in str(dtype) and "b" not in str(dtype) else -1.0e9


def combine(*masks: Any) -> Any:
    """AND of the given boolean masks (None: no constraint), broadcast by the usual rules."""
    out = None
    for m in masks:
        if m is None:
            continue
        m = ops.cast(m, "bool")
        out = m if out is None else ops.logical_and(out, m)
    return out


def masked_softmax(scores: Any, mask: Any = None) -> Any:
    """softmax over the last axis among the keys ``mask`` allows (True = may attend,
    broadcastable to ``scores``); 0 on masked keys, and a row with no key left gets all 0, never
    NaN (attnkit's rule for fully masked rows)."""
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.logical_and(ops.cast(mask, "bool"), ops.ones_like(scores, dtype="bool"))
    alive = ops.any(mask, axis=-1, keepdims=True)
    filled = ops.where(mask, scores, ops.full_like(scores, _fill(scores.dtype)))
    filled = ops.where(alive, filled, ops.zeros_like(scores))  # no -inf row to normalise
    weights = ops.softmax(filled, axis=-1)
    return ops.where(mask, weights, ops.zeros_like(weights))


def structural_mask(tq: Any, tk: Any, causal: bool, window: tuple | None) -> Any:
    """(Tq, Tk) mask of causality and a (left, right) window, aligned bottom-right as in
    attnkit: query i sits at key position i + (Tk - Tq). None when neither is asked for."""
    if not causal and window is None:
        return None
    i = ops.expand_dims(ops.arange(tq) + (tk - tq), 1)  # (Tq, 1)
    j = ops.expand_dims(ops.arange(tk), 0)  # (1, Tk)
    out = None
    if causal:
        out = combine(out, j <= i)
    if window is not None:
        left, right = window
        if left is not None:
            out = combine(out, j >= i - left)
        if right is not None:
            out = combine(out, j <= i + right)
    return out


def padding_mask(*masks: Any) -> Any:
    """(B, 1, Tk) from the keys' and values' Keras masks (B, Tk), or None: a key-padding mask
    that broadcasts over the queries."""
    m = combine(*masks)
    return None if m is None else ops.expand_dims(m, -2)


def zero_masked(values: Any, keep: Any) -> Any:
    """``values`` (B, T, D) with the steps ``keep`` (B, T) rules out set to 0, so a NaN or inf
    in padding reaches no output (0 x NaN would)."""
    if keep is None:
        return values
    return ops.where(ops.expand_dims(ops.cast(keep, "bool"), -1), values, ops.zeros_like(values))


def check_window(window: Any) -> tuple[int | None, int | None] | None:
    """(left, right) from None, an int r (= (r, r)) or a pair; ValueError otherwise."""
    if window is None:
        return None
    if isinstance(window, int) and not isinstance(window, bool):
        window = (window, window)
    if (
        not isinstance(window, (tuple, list))
        or len(window) != 2
        or any(
            w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 0)
            for w in window
        )
    ):
        raise ValueError(f"window must be None, an int >= 0 or (left, right), got {window!r}")
    return (window[0], window[1])
