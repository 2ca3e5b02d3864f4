"""Attention maps and masks drawn with shade characters in a terminal."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SHADES = " ░▒▓█"


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: 2 for East Asian wide characters, 0 for combining
    marks (wcwidth's tables, from the [train] extra; an unprintable character counts as 1).
    Without wcwidth, Unicode's East Asian Width property gives the wide ones.

    >>> width("2021年3月14日"), width("abc")
    (13, 3)
    """
    try:
        from wcwidth import wcswidth, wcwidth
    except ImportError:
        import unicodedata

        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    n = wcswidth(text)
    return n if n >= 0 else sum(max(wcwidth(c), 1) if c.isprintable() else 1 for c in text)


def ljust(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` terminal columns (str.ljust counts
    characters, which misaligns tables of wide characters)."""
    return text + " " * max(columns - width(text), 0)


def rjust(text: str, columns: int) -> str:
    return " " * max(columns - width(text), 0) + text


def _labels(labels: Sequence[str] | None, n: int) -> list[str]:
    return [str(x) for x in labels] if labels is not None else [str(i) for i in range(n)]


def render_weights(
    weights: Tensor,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
) -> str:
    """A (Tq, Tk) weight matrix as text: one line per query, one shade per key.

    Each cell is shaded by its weight relative to the row maximum, so every row shows where
    that query looked. Column labels are written vertically above the grid; when one of them
    is a wide (East Asian) character every column is two terminal cells wide, so the grid stays
    aligned.
    """
    if weights.dim() != 2:
        raise ValueError(f"expected a (Tq, Tk) matrix, got shape {tuple(weights.shape)}")
    w = weights.detach().float().cpu()
    tq, tk = w.shape
    rows, cols = _labels(rows, tq), _labels(cols, tk)
    left = max((width(r) for r in rows), default=0)
    cell = max([width(ch) for c in cols for ch in c] + [1])  # 1, or 2 with wide characters
    peak = w.amax(dim=1, keepdim=True).clamp_min(1e-12)
    level = torch.round(w / peak * (len(SHADES) - 1)).long()
    height = max((len(c) for c in cols), default=0)
    lines = []
    for i in range(height):
        header = "".join(ljust(c[i] if i < len(c) else "", cell) for c in cols)
        lines.append(" " * (left + 1) + "|" + header + "|")
    lines.append(" " * (left + 1) + "+" + "-" * (tk * cell) + "+")
    for label, row in zip(rows, level.tolist(), strict=True):
        lines.append(rjust(label, left) + " |" + "".join(SHADES[x] * cell for x in row) + "|")
    return "\n".join(lines)


def render_mask(mask: Tensor) -> str:
    """A (Tq, Tk) bool mask as rows of 1 (may attend) and . (masked)."""
    if mask.dim() != 2:
        raise ValueError(f"expected a (Tq, Tk) mask, got shape {tuple(mask.shape)}")
    return "\n".join(" ".join("1" if x else "." for x in row) for row in mask.tolist())
