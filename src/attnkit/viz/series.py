"""Pictures of a price-series comparison (matplotlib, no pyplot): equity curves, confusion
matrices, and where self-attention looked over the bars of a window next to the fixed weights
of a fully connected layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def equity_figure(
    times, curves: Mapping[str, np.ndarray], baselines: Sequence[str] = (), title: str = ""
):
    """Cumulative log P&L per name over the test bars (``times`` their x positions); the
    names in ``baselines`` dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for name, curve in curves.items():
        style = "--" if name in baselines else "-"
        ax.plot(times, np.cumsum(curve), style, lw=1.2 if style == "-" else 1.0, label=name)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylabel("cumulative log return, after costs")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    fig.autofmt_xdate()
    return fig


def confusion_figure(matrices: Mapping[str, np.ndarray], classes: Sequence[str], title: str = ""):
    """One panel per name: rows the true class, columns the predicted, each row as shares."""
    from matplotlib.figure import Figure

    names = list(matrices)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols + 0.6, 2.6 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        counts = np.asarray(matrices[name], dtype=float)
        shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(shares):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v > 0.6 else "black",
            )
        ax.set_xticks(range(len(classes)), classes, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(name, fontsize=9)
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.supxlabel("predicted", fontsize=9)
    fig.supylabel("true", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def bar_weights_figure(
    attention: Mapping[str, np.ndarray],
    fixed: np.ndarray | None,
    labels: Sequence[str],
    title: str = "",
):
    """Where the last bar's query looked, one panel per attention model: ``attention[name]``
    is (predictions, N) weights over the window's N bars (oldest first), one line per
    prediction labelled by ``labels``; ``fixed`` (N,) the fully connected layer's weight on
    each bar, the same for every input, drawn black in each panel."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(attention), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(attention), squeeze=False)).ravel()
    for ax, (name, rows) in zip(axes, attention.items(), strict=True):
        rows = np.asarray(rows)
        back = np.arange(1 - rows.shape[1], 1)
        for row, label in zip(rows, labels, strict=True):
            ax.plot(back, row, marker=".", lw=1, alpha=0.85, label=label)
        if fixed is not None:
            ax.plot(back, fixed, color="black", lw=2.2, label="MLP: fixed weight per bar")
        ax.set_xlabel("bar (0 = the bar predicted from)")
        ax.set_ylabel("weight")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def save(fig, path: str | Path) -> Path:
    """Write a figure (PNG or SVG by the suffix); returns the path."""
    return _save(fig, path)
