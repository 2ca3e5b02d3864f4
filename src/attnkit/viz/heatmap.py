"""Attention heatmaps as PNG/SVG with matplotlib: input characters across, output down."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

# The fallback chain, tried in order for each character: DejaVu Sans (shipped with matplotlib:
# Latin, Greek, Cyrillic), IPAexGothic (shipped by the matplotlib-fontja package of the [plot]
# extra: kanji, which cover the Chinese of dates and times, kana, Cyrillic), then CJK fonts a
# system may have (Debian's fonts-noto-cjk, fonts-wqy-microhei...). A character none of them
# has is labelled with its code point ("U+XXXX") rather than drawn as an empty box.
FONTS = (
    "DejaVu Sans",
    "IPAexGothic",
    "Noto Sans CJK SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
)
PACKAGED_FONT = ("matplotlib_fontja", "fonts/ipaexg.ttf")  # (package, file) of IPAexGothic


def _register_packaged_font() -> None:
    """Make the packaged CJK font known to matplotlib without importing its package (whose
    import changes matplotlib's default font for the whole process)."""
    import importlib.util

    from matplotlib import font_manager

    spec = importlib.util.find_spec(PACKAGED_FONT[0])
    if spec is None or not spec.submodule_search_locations:
        return
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_FONT[1]
    if path.is_file():
        font_manager.fontManager.addfont(str(path))


@lru_cache(maxsize=1)
def _available_fonts() -> list[tuple[str, object]]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    _register_packaged_font()
    found = []
    for name in FONTS:
        try:
            path = font_manager.findfont(name, fallback_to_default=False)
        except ValueError:
            continue
        found.append((name, FT2Font(path)))
    return found


def _label(ch: str) -> str:
    """The character if some available font has a glyph for it, else its code point; a longer
    label (a subword, a word) character by character."""
    if len(ch) != 1:
        return "".join(_label(c) for c in ch) if ch else "∅"
    if ch == " ":
        return "␣"
    for _, font in _available_fonts():
        if font.get_char_index(ord(ch)):
            return ch
    return f"U+{ord(ch):04X}"


def heatmap_figure(
    weights: torch.Tensor,
    inputs: Sequence[str],
    outputs: Sequence[str],
    title: str | None = None,
):
    """A matplotlib ``Figure`` of a (T_out, S_in) weight matrix: inputs across, outputs down,
    each tick labelled with its character (a space as "␣"), and a colour bar. No pyplot is
    involved, so matplotlib's global backend and open figures are left as they were."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    w = _matrix(weights, inputs, outputs)
    with rc_context({"font.family": _font_names()}):
        fig = Figure(figsize=(max(4, 0.32 * len(inputs) + 2), max(3, 0.32 * len(outputs) + 1.5)))
        ax = fig.subplots()
        im = _draw(ax, w, inputs, outputs, float(w.max()))
        ax.set_xlabel("input")
        ax.set_ylabel("output")
        if title:
            ax.set_title(_title(title))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
        fig.tight_layout()
    return fig


def _font_names() -> list[str]:
    return [name for name, _ in _available_fonts()] or ["DejaVu Sans"]


def _title(text: str) -> str:
    return "".join(c if c == " " else _label(c) for c in text)


def _matrix(weights: torch.Tensor, inputs: Sequence[str], outputs: Sequence[str]):
    w = weights.detach().float().cpu().numpy()
    if w.shape[-2:] != (len(outputs), len(inputs)):
        raise ValueError(
            f"weights {w.shape} do not match {len(outputs)} outputs x {len(inputs)} inputs"
        )
    return w


def _draw(ax, w, inputs: Sequence[str], outputs: Sequence[str], top: float, size=None):
    """One (outputs x inputs) matrix on ``ax``, labelled by character, colours 0..top."""
    if w.ndim != 2:
        raise ValueError(f"a heatmap needs a 2-D matrix, got shape {w.shape}")
    im = ax.imshow(w, cmap="viridis", vmin=0, vmax=max(top, 1e-6), aspect="auto")
    labels = [_label(c) for c in inputs]
    ax.set_xticks(range(len(inputs)), labels, fontsize=size)
    if any(len(text) > 1 for text in labels):  # words or subwords: slanted, so none overlap
        ax.tick_params(axis="x", labelrotation=60)
        for text in ax.get_xticklabels():
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    ax.set_yticks(range(len(outputs)), [_label(c) for c in outputs], fontsize=size)
    return im


def head_grid_figure(
    weights: torch.Tensor,
    inputs: Sequence[str],
    outputs: Sequence[str],
    title: str | None = None,
    columns: int = 4,
):
    """A ``Figure`` with one heatmap per head of one layer: weights (H, T_out, S_in), inputs
    across and outputs down in every panel, one colour scale (0 to the largest weight of any
    head) so heads compare at a glance.

    Example:
        >>> fig = head_grid_figure(torch.rand(6, 3, 5).softmax(-1), "abcde", "xyz")
        >>> len([ax for ax in fig.axes if ax.get_title().startswith("head")])
        6
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    w = _matrix(weights, inputs, outputs)
    if w.ndim != 3 or w.shape[0] < 1:
        raise ValueError(f"a head grid needs weights (H, T_out, S_in), got shape {w.shape}")
    heads = w.shape[0]
    cols = max(1, min(columns, heads))
    rows = -(-heads // cols)
    panel_w, panel_h = max(2.5, 0.22 * len(inputs) + 1), max(2.0, 0.22 * len(outputs) + 1)
    with rc_context({"font.family": _font_names()}):
        fig = Figure(figsize=(cols * panel_w + 1, rows * panel_h + 0.8), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        top = float(w.max())
        for h, ax in enumerate(axes.flat):
            if h >= heads:
                ax.set_axis_off()
                continue
            im = _draw(ax, w[h], inputs, outputs, top, size=7)
            ax.set_title(f"head {h}", fontsize=9)
        if title:
            fig.suptitle(_title(title))
        fig.colorbar(
            im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label="attention weight"
        )
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure to ``path`` (PNG, SVG or PDF by its suffix), making its directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def save_heatmap(
    weights: torch.Tensor,
    inputs: Sequence[str],
    outputs: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Write :func:`heatmap_figure` to ``path`` (PNG, SVG or PDF by its suffix); returns it.

    Example:
        >>> import tempfile, torch
        >>> w = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     save_heatmap(w, "ab", "AB", f"{d}/map.png").stat().st_size > 0
        True
    """
    return save_figure(heatmap_figure(weights, inputs, outputs, title), path)


def save_head_grid(
    weights: torch.Tensor,
    inputs: Sequence[str],
    outputs: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Write :func:`head_grid_figure` of weights (H, T_out, S_in) to ``path``; returns it."""
    return save_figure(head_grid_figure(weights, inputs, outputs, title), path)
