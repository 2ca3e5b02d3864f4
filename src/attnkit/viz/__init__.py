"""Pictures of attention: terminal heatmaps and PNG/SVG heatmaps (matplotlib)."""

from .terminal import render_mask, render_weights


def save_heatmap(*args, **kwargs):
    """See ``attnkit.viz.heatmap.save_heatmap`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import save_heatmap as _save

    return _save(*args, **kwargs)


def heatmap_figure(*args, **kwargs):
    """See ``attnkit.viz.heatmap.heatmap_figure`` (imports matplotlib, the [plot] extra)."""
    from .heatmap import heatmap_figure as _figure

    return _figure(*args, **kwargs)


__all__ = ["heatmap_figure", "render_mask", "render_weights", "save_heatmap"]
