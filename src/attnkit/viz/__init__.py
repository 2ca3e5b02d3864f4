"""Pictures of attention: terminal heatmaps (and, with matplotlib, PNG/SVG heatmaps)."""

from .terminal import render_mask, render_weights

__all__ = ["render_mask", "render_weights"]
