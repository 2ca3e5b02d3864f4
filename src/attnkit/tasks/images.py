"""Labelled images for the image classifiers: scikit-learn's handwritten digits (always there:
they ship inside scikit-learn, 1,797 images of 8x8 pixels, 10 classes), with a fixed split.

Pixels are scaled to [0, 1]; the split is a fixed permutation (seed 0): 70% training, 15%
validation, 15% test, the same on every machine.

>>> data = digits()
>>> data.train.x.shape, data.classes[:3], len(data.test)
(torch.Size([1257, 1, 8, 8]), ('0', '1', '2'), 270)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

__all__ = ["ImageSet", "Images", "digits"]


class Images:
    """Images (N, C, H, W) and labels (N,) as the trainer's data set."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if x.dim() != 4 or len(x) != len(y):
            raise ValueError(f"expected images (N, C, H, W) and N labels, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")  # fmt: skip
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, rows) -> SimpleNamespace:
        return SimpleNamespace(x=self.x[rows], y=self.y[rows])


@dataclass
class ImageSet:
    name: str
    classes: tuple[str, ...]
    train: Images
    valid: Images
    test: Images


def digits() -> ImageSet:
    """scikit-learn's 8x8 digits with the fixed split of the module docstring."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(raw.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    a, b = int(0.7 * len(x)), int(0.85 * len(x))
    parts = [order[:a], order[a:b], order[b:]]
    return ImageSet("digits", tuple(str(i) for i in range(10)),
                    *(Images(x[p], y[p]) for p in parts))  # fmt: skip
