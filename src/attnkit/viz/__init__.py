"""Pictures of attention: terminal heatmaps, PNG/SVG heatmaps and per-head grids
(matplotlib)."""

from .terminal import render_mask, render_weights


def save_heatmap(*args, **kwargs):
    """See ``attnkit.viz.heatmap.save_heatmap`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import save_heatmap as _save

    return _save(*args, **kwargs)


def heatmap_figure(*args, **kwargs):
    """See ``attnkit.viz.heatmap.heatmap_figure`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import heatmap_figure as _figure

    return _figure(*args, **kwargs)


def save_head_grid(*args, **kwargs):
    """See ``attnkit.viz.heatmap.save_head_grid`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import save_head_grid as _save

    return _save(*args, **kwargs)


def head_grid_figure(*args, **kwargs):
    """See ``attnkit.viz.heatmap.head_grid_figure`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import head_grid_figure as _figure

    return _figure(*args, **kwargs)


__all__ = [
    "head_grid_figure",
    "heatmap_figure",
    "render_mask",
    "render_weights",
    "save_head_grid",
    "save_heatmap",
]
