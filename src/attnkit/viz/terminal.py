"""Attention maps and masks drawn with shade characters in a terminal."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SHADES = " ░▒▓█"


def _labels(labels: Sequence[str] | None, n: int) -> list[str]:
    return [str(x) for x in labels] if labels is not None else [str(i) for i in range(n)]


def render_weights(
    weights: Tensor,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
) -> str:
    """A (Tq, Tk) weight matrix as text: one line per query, one shade per key.

    Each cell is shaded by its weight relative to the row maximum, so every row shows where
    that query looked. Column labels are written vertically above the grid.
    """
    if weights.dim() != 2:
        raise ValueError(f"expected a (Tq, Tk) matrix, got shape {tuple(weights.shape)}")
    w = weights.detach().float().cpu()
    tq, tk = w.shape
    rows, cols = _labels(rows, tq), _labels(cols, tk)
    width = max((len(r) for r in rows), default=0)
    peak = w.amax(dim=1, keepdim=True).clamp_min(1e-12)
    level = torch.round(w / peak * (len(SHADES) - 1)).long()
    height = max((len(c) for c in cols), default=0)
    lines = []
    for i in range(height):
        header = "".join(c[i] if i < len(c) else " " for c in cols)
        lines.append(" " * (width + 1) + "|" + header + "|")
    lines.append(" " * (width + 1) + "+" + "-" * tk + "+")
    for label, row in zip(rows, level.tolist(), strict=True):
        lines.append(f"{label:>{width}} |" + "".join(SHADES[x] for x in row) + "|")
    return "\n".join(lines)


def render_mask(mask: Tensor) -> str:
    """A (Tq, Tk) bool mask as rows of 1 (may attend) and . (masked)."""
    if mask.dim() != 2:
        raise ValueError(f"expected a (Tq, Tk) mask, got shape {tuple(mask.shape)}")
    return "\n".join(" ".join("1" if x else "." for x in row) for row in mask.tolist())
