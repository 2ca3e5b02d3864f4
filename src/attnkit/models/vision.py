"""A small CNN image classifier with a choice of attention block, registered as
"image-classifier".

Each stage is conv 3x3 -> batch norm -> ReLU -> the block ("none"; "se": squeeze-and-excitation,
Hu et al. 2018; "cbam": channel then spatial attention, Woo et al. 2018) -> 2x2 max pooling
(skipped once the map is 2x2 or smaller); global average pooling and a linear layer score the
classes. ``return_weights`` adds each stage's attention: a list of (channel weights (B, C, 1, 1)
or None, spatial map (B, 1, H, W) or None), in the stage's resolution.

>>> m = ImageClassifier(ImageClassifierConfig(block="cbam"))
>>> logits, maps = m(torch.randn(2, 1, 8, 8), return_weights=True)
>>> logits.shape, [tuple(s.shape) for _, s in maps]
(torch.Size([2, 10]), [(2, 1, 8, 8), (2, 1, 4, 4)])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import CBAM, SqueezeExcite
from ..layers.base import check_sizes
from .registry import register

BLOCKS = ("none", "se", "cbam")


@dataclass
class ImageClassifierConfig:
    in_channels: int = 1
    classes: int = 10
    widths: tuple[int, ...] = (32, 64)  # channels of each stage
    block: str = "none"
    reduction: int = 8  # the blocks' channel bottleneck
    spatial_kernel: int = 3  # CBAM's spatial convolution (small maps want a small kernel)
    dropout: float = 0.1


class ConvStages(nn.Module):
    """The convolutional stages of the image models: per stage conv 3x3 -> batch norm -> ReLU
    -> the attention block -> 2x2 max pooling (skipped once the map is 2x2 or smaller).

    ``features(x, return_weights)`` gives the last stage's map (B, widths[-1], H', W') and,
    on request, each stage's (channel weights or None, spatial map or None)."""

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...],
        block: str = "none",
        reduction: int = 8,
        spatial_kernel: int = 3,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        check_sizes(
            type(self).__name__,
            in_channels=in_channels,
            reduction=reduction,
            stages=len(widths),
            **{f"widths[{i}]": w for i, w in enumerate(widths)},
        )
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; expected one of {', '.join(BLOCKS)}")
        self.in_channels = in_channels
        self.convs, self.norms, self.blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        before = in_channels
        for w in widths:
            self.convs.append(nn.Conv2d(before, w, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(w))
            if block == "se":
                self.blocks.append(SqueezeExcite(w, reduction=min(reduction, w)))
            elif block == "cbam":
                self.blocks.append(CBAM(w, reduction=min(reduction, w), kernel_size=spatial_kernel))
            else:
                self.blocks.append(nn.Identity())
            before = w

    def features(self, x: Tensor, return_weights: bool = False) -> tuple[Tensor, list]:
        if x.dim() != 4 or x.shape[1] != self.in_channels or not x.is_floating_point():
            raise ValueError(
                f"expected float images (B, {self.in_channels}, H, W), got "
                f"{x.dtype} {tuple(x.shape)}"
            )
        maps = []
        for conv, norm, block in zip(self.convs, self.norms, self.blocks, strict=True):
            x = F.relu(norm(conv(x)))
            if isinstance(block, nn.Identity):
                maps.append((None, None))
            else:
                out = block(x, return_weights=return_weights)
                x = out.context
                if return_weights:
                    w = out.weights
                    maps.append((w, None) if isinstance(block, SqueezeExcite) else w)
            if min(x.shape[-2:]) > 2:
                x = F.max_pool2d(x, 2)
        return x, maps


@register("image-classifier", ImageClassifierConfig)
class ImageClassifier(ConvStages):
    def __init__(self, cfg: ImageClassifierConfig) -> None:
        check_sizes("ImageClassifier", classes=cfg.classes)
        super().__init__(cfg.in_channels, cfg.widths, cfg.block, cfg.reduction, cfg.spatial_kernel)
        self.cfg = cfg
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(tuple(cfg.widths)[-1], cfg.classes)

    def forward(self, x: Tensor, *, return_weights: bool = False):
        x, maps = self.features(x, return_weights)
        logits = self.head(self.drop(x.mean((-2, -1))))
        return (logits, maps) if return_weights else logits

    def loss(self, batch) -> Tensor:
        """Cross-entropy on a batch with ``x`` (B, C, H, W) and ``y`` (B,) class ids."""
        return F.cross_entropy(self(batch.x), batch.y)
