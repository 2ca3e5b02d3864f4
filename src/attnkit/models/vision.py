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


@register("image-classifier", ImageClassifierConfig)
class ImageClassifier(nn.Module):
    def __init__(self, cfg: ImageClassifierConfig) -> None:
        super().__init__()
        widths = tuple(cfg.widths)
        check_sizes("ImageClassifier", in_channels=cfg.in_channels, classes=cfg.classes,
                    reduction=cfg.reduction, stages=len(widths),
                    **{f"widths[{i}]": w for i, w in enumerate(widths)})  # fmt: skip
        if cfg.block not in BLOCKS:
            raise ValueError(f"unknown block {cfg.block!r}; expected one of {', '.join(BLOCKS)}")
        self.cfg = cfg
        self.convs, self.norms, self.blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        before = cfg.in_channels
        for w in widths:
            self.convs.append(nn.Conv2d(before, w, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(w))
            if cfg.block == "se":
                self.blocks.append(SqueezeExcite(w, reduction=min(cfg.reduction, w)))
            elif cfg.block == "cbam":
                self.blocks.append(CBAM(w, reduction=min(cfg.reduction, w),
                                        kernel_size=cfg.spatial_kernel))  # fmt: skip
            else:
                self.blocks.append(nn.Identity())
            before = w
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(before, cfg.classes)

    def forward(self, x: Tensor, *, return_weights: bool = False):
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels or not x.is_floating_point():
            raise ValueError(f"expected float images (B, {self.cfg.in_channels}, H, W), got "
                             f"{x.dtype} {tuple(x.shape)}")  # fmt: skip
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
        logits = self.head(self.drop(x.mean((-2, -1))))
        return (logits, maps) if return_weights else logits

    def loss(self, batch) -> Tensor:
        """Cross-entropy on a batch with ``x`` (B, C, H, W) and ``y`` (B,) class ids."""
        return F.cross_entropy(self(batch.x), batch.y)
