"""Attention over images: an image with each stage's spatial attention map upsampled over it,
and each stage's channel weights as bars; a caption's attention, one panel per output token
(matplotlib, the [plot] extra)."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

__all__ = ["caption_figure", "image_maps_figure", "save_caption_maps", "save_image_maps"]


def upsample(spatial: Tensor, size: tuple[int, int]) -> Tensor:
    """A (1, h, w) or (h, w) map resized bilinearly to ``size`` (H, W)."""
    m = spatial.detach().float().reshape(1, 1, *spatial.shape[-2:])
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0]


def image_maps_figure(image: Tensor, stages: list, title: str = ""):
    """One panel for the image, one per stage with a spatial map (over the image), and one per
    stage with channel weights (sorted bars). ``image`` (C, H, W); ``stages`` as returned by
    the image classifier for one example: [(channel (C, 1, 1) or None, spatial (1, h, w) or
    None)]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gray = _gray(image)
    panels = 1 + sum((c is not None) + (s is not None) for c, s in stages)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.8), squeeze=False)
    axes = axes[0]
    axes[0].imshow(gray, cmap="gray_r")
    axes[0].set_title("image", fontsize=9)
    k = 1
    for i, (channel, spatial) in enumerate(stages):
        if spatial is not None:
            axes[k].imshow(gray, cmap="gray_r")
            axes[k].imshow(
                upsample(spatial, tuple(gray.shape)).numpy(),
                cmap="magma",
                alpha=0.55,
                vmin=0,
                vmax=1,
            )
            axes[k].set_title(
                f"stage {i + 1}: spatial ({spatial.shape[-2]}x{spatial.shape[-1]})", fontsize=9
            )
            k += 1
        if channel is not None:
            w = channel.detach().float().flatten().sort(descending=True).values
            axes[k].bar(range(len(w)), w.numpy(), width=1.0, color="#3060a0")
            axes[k].set_ylim(0, 1)
            axes[k].set_title(f"stage {i + 1}: channel weights", fontsize=9)
            k += 1
    return _finish(fig, [ax for ax in axes[:k] if ax.images], title)


def _gray(image: Tensor):
    """(H, W) numpy gray levels of an image (C, H, W) or (H, W)."""
    img = image.detach().float()
    return (img.mean(0) if img.dim() == 3 else img).numpy()


def _finish(fig, pictures: list, title: str):
    """No ticks on the panels that are pictures; the title; a tight layout."""
    for ax in pictures:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def caption_figure(image: Tensor, weights: Tensor, tokens: list[str], title: str = ""):
    """The image, then one panel per output token with that step's attention (h', w') upsampled
    over it. ``weights`` (T, h', w'), one map per token; one colour scale (0 to the largest
    weight of all steps) so panels compare, and weight 0 leaves the image as it is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(weights) != len(tokens):
        raise ValueError(f"{len(weights)} attention maps for {len(tokens)} tokens")
    gray = _gray(image)
    h, w = gray.shape
    panels = 1 + len(tokens)
    if w >= 2 * h:  # a wide image (digits in a row): panels one under the other
        fig, axes = plt.subplots(panels, 1, figsize=(6, panels * (6 * h / w + 0.45)))
    else:
        fig, axes = plt.subplots(1, panels, figsize=(2.2 * panels, 2.6))
    axes = list(axes)
    axes[0].imshow(gray, cmap="gray_r")
    axes[0].set_title("image", fontsize=9)
    top = float(weights.max()) or 1.0
    for k, (token, grid) in enumerate(zip(tokens, weights, strict=True), start=1):
        axes[k].imshow(gray, cmap="gray_r")
        share = (upsample(grid, (h, w)) / top).clamp(0, 1).numpy()
        overlay = plt.get_cmap("autumn_r")(share)  # yellow to red as the weight grows ...
        overlay[..., 3] = 0.8 * share  # ... and transparent where it is 0
        axes[k].imshow(overlay)
        axes[k].set_title(f"step {k}: {token!r} (max {float(grid.max()):.2f})", fontsize=9)
    return _finish(fig, axes, title)


def save_image_maps(image: Tensor, stages: list, path: str | Path, title: str = "") -> Path:
    return _save(image_maps_figure(image, stages, title), path)


def save_caption_maps(
    image: Tensor, weights: Tensor, tokens: list[str], path: str | Path, title: str = ""
) -> Path:
    return _save(caption_figure(image, weights, tokens, title), path)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    from .heatmap import save_figure

    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
