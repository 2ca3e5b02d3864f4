"""Attention over images: an image with each stage's spatial attention map upsampled over it,
and each stage's channel weights as bars (matplotlib, the [plot] extra)."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

__all__ = ["image_maps_figure", "save_image_maps"]


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

    img = image.detach().float()
    gray = (img.mean(0) if img.dim() == 3 else img).numpy()
    panels = 1 + sum((c is not None) + (s is not None) for c, s in stages)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.8), squeeze=False)
    axes = axes[0]
    axes[0].imshow(gray, cmap="gray_r")
    axes[0].set_title("image", fontsize=9)
    k = 1
    for i, (channel, spatial) in enumerate(stages):
        if spatial is not None:
            axes[k].imshow(gray, cmap="gray_r")
            axes[k].imshow(upsample(spatial, tuple(gray.shape)).numpy(), cmap="magma", alpha=0.55,
                           vmin=0, vmax=1)  # fmt: skip
            axes[k].set_title(f"stage {i + 1}: spatial ({spatial.shape[-2]}x{spatial.shape[-1]})",
                              fontsize=9)  # fmt: skip
            k += 1
        if channel is not None:
            w = channel.detach().float().flatten().sort(descending=True).values
            axes[k].bar(range(len(w)), w.numpy(), width=1.0, color="#3060a0")
            axes[k].set_ylim(0, 1)
            axes[k].set_title(f"stage {i + 1}: channel weights", fontsize=9)
            k += 1
    for ax in axes[:k]:
        if ax.images:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_image_maps(image: Tensor, stages: list, path: str | Path, title: str = "") -> Path:
    import matplotlib.pyplot as plt

    from .heatmap import save_figure

    fig = image_maps_figure(image, stages, title)
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
