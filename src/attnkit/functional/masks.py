"""Boolean attention masks.

Convention (as torch SDPA): **True = may attend**. Masks broadcast to the score shape,
(B, H, Tq, Tk) for multi-head or (B, Tq, Tk) for single-head attention.

Causal and window masks align **bottom-right**: query i of Tq sees key j when
j <= i + (Tk - Tq). With Tq == Tk this is the usual lower triangle; with Tq < Tk (incremental
decoding with a cache) the last query sees every key.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._ext.tracing import tracing

__all__ = ["padding", "causal", "window", "combine", "key_padding", "check_mask"]


def padding(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Padding mask from sequence lengths: True on real tokens.

    Example, lengths = [3, 1], max_len = 4::

        1 1 1 0
        1 0 0 0

    Args:
        lengths: (B,) integer tensor of valid lengths, 0 <= length <= max_len.
        max_len: Tk; defaults to ``lengths.max()``.

    Returns:
        (B, Tk) bool tensor.

    Raises:
        ValueError: lengths not 1-D integers, negative, or longer than ``max_len``.
    """
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(
            f"lengths must be a 1-D integer tensor of shape (B,), got dtype {lengths.dtype} "
            f"and shape {tuple(lengths.shape)}"
        )
    if tracing():  # a graph checks no values; its width comes from a shape
        if max_len is None:
            raise ValueError("a padding mask in a traced graph needs max_len")
    else:
        if lengths.numel() and int(lengths.min()) < 0:
            raise ValueError(f"lengths must be >= 0, got min {int(lengths.min())}")
        longest = int(lengths.max()) if lengths.numel() else 0
        if max_len is None:
            max_len = longest
        if longest > max_len:
            raise ValueError(f"a length ({longest}) exceeds max_len ({max_len})")
    positions = torch.arange(max_len, device=lengths.device)
    return positions[None, :] < lengths[:, None]  # (B, Tk)


def _offsets(tq: int, tk: int, device: torch.device | str | None) -> Tensor:
    """(Tq, Tk) matrix of j - (i + Tk - Tq): key position relative to the aligned query."""
    if tq < 1 or tk < 1:
        raise ValueError(f"sequence lengths must be >= 1, got Tq={tq}, Tk={tk}")
    i = torch.arange(tq, device=device)[:, None] + (tk - tq)
    j = torch.arange(tk, device=device)[None, :]
    return j - i


def causal(tq: int, tk: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Causal mask aligned bottom-right: query i sees keys j <= i + (Tk - Tq).

    Example, Tq = Tk = 4, and Tq = 2, Tk = 4::

        1 0 0 0        1 1 1 0
        1 1 0 0        1 1 1 1
        1 1 1 0
        1 1 1 1

    Returns:
        (Tq, Tk) bool tensor.
    """
    tk = tq if tk is None else tk
    return _offsets(tq, tk, device) <= 0


def window(
    tq: int,
    tk: int | None = None,
    left: int | None = None,
    right: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Band mask: keep keys with i - left <= j <= i + right (inclusive), bottom-right aligned.

    ``None`` leaves that side unbounded, so ``window(t, t, None, 0)`` equals ``causal(t)``.
    Example, Tq = Tk = 4, left = 1, right = 0::

        1 0 0 0
        1 1 0 0
        0 1 1 0
        0 0 1 1

    Returns:
        (Tq, Tk) bool tensor.
    """
    tk = tq if tk is None else tk
    for name, val in (("left", left), ("right", right)):
        if val is not None and val < 0:
            raise ValueError(f"window {name} must be >= 0 or None, got {val}")
    rel = _offsets(tq, tk, device)
    keep = torch.ones_like(rel, dtype=torch.bool)
    if left is not None:
        keep &= rel >= -left
    if right is not None:
        keep &= rel <= right
    return keep


def combine(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of masks, broadcasting their shapes; ``None`` entries are ignored.

    Returns ``None`` when every entry is ``None`` (nothing is masked).
    """
    out: Tensor | None = None
    for m in masks:
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise ValueError(f"masks must be bool (True = may attend), got dtype {m.dtype}")
        out = m if out is None else out & m
    return out


def key_padding(
    key_padding_mask: Tensor | None, lengths: Tensor | None, batch: int, tk: int
) -> Tensor | None:
    """A layer's key padding, (B, Tk) True on real keys, from ``key_padding_mask=`` (B, Tk)
    and/or ``lengths=`` (B,); both given are combined. None when neither is given.

    Example, lengths = [3, 1] with Tk = 4 (the same as key_padding_mask below)::

        1 1 1 0
        1 0 0 0

    Raises:
        ValueError: a mask that is not bool of shape exactly (B, Tk), or bad lengths.
    """
    pad = None
    if key_padding_mask is not None:
        m = key_padding_mask
        if not isinstance(m, Tensor) or m.dtype != torch.bool or tuple(m.shape) != (batch, tk):
            got = f"{m.dtype} {tuple(m.shape)}" if isinstance(m, Tensor) else type(m).__name__
            raise ValueError(
                f"key_padding_mask must be bool of shape (B, Tk) = ({batch}, {tk}), True on real "
                f"keys; got {got}"
            )
        pad = m
    if lengths is not None:
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.shape[0] != batch:
            raise ValueError(
                f"lengths must have shape (B,) = ({batch},), got {tuple(lengths.shape)}"
            )
        pad = combine(pad, padding(lengths, tk))
    return pad


def check_mask(mask: Tensor, score_shape: tuple[int, ...], expected: str | None = None) -> None:
    """Raise ValueError unless ``mask`` is bool and broadcasts to ``score_shape`` by torch's
    broadcasting rules (a 2-D mask is (Tq, Tk)). ``expected`` names the shape in the message."""
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask must have dtype torch.bool (True = may attend), got {mask.dtype}; "
            "convert an additive float mask with `mask == 0`"
        )
    ok = mask.dim() <= len(score_shape)
    if ok:
        try:
            ok = torch.broadcast_shapes(mask.shape, score_shape) == torch.Size(score_shape)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(score_shape)} (expected "
            + (expected or f"(..., Tq, Tk) with Tq={score_shape[-2]}, Tk={score_shape[-1]}")
            + ")"
        )
