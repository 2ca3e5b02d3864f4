"""Pictures of attention: terminal heatmaps and PNG/SVG heatmaps (matplotlib)."""

from .terminal import render_mask, render_weights


def save_heatmap(*args, **kwargs):
    """See ``attnkit.viz.heatmap.save_heatmap`` (imports matplotlib on first use)."""
    from .heatmap import save_heatmap as _save

    return _save(*args, **kwargs)


__all__ = ["render_mask", "render_weights", "save_heatmap"]
