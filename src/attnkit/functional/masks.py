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


def key_padding(mask: Tensor | None, lengths: Tensor | None, tk: int) -> Tensor | None:
    """Normalise a layer's ``mask=`` / ``lengths=`` pair.

    A 2-D mask of shape (B, Tk) or ``lengths`` of shape (B,) is a key padding mask and comes
    back as (B, 1, Tk) so that it broadcasts over queries; other masks are returned unchanged.
    """
    if lengths is not None:
        pad = padding(lengths, tk)[:, None, :]  # (B, 1, Tk)
        if mask is not None and mask.dim() == 2:
            mask = mask[:, None, :]
        return combine(mask, pad)
    if mask is not None and mask.dim() == 2:
        return mask[:, None, :]  # (B, 1, Tk)
    return mask


def check_mask(mask: Tensor, score_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``mask`` is bool and broadcasts to ``score_shape``."""
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
            f"{tuple(score_shape)} (expected (..., Tq, Tk) with Tq={score_shape[-2]}, "
            f"Tk={score_shape[-1]})"
        )
