"""Labelled images for the image classifiers, with fixed splits; pixels scaled to [0, 1].

- ``digits()``: scikit-learn's handwritten digits (always there: they ship inside scikit-learn,
  1,797 images of 8x8 pixels, 10 classes). A fixed permutation (seed 0) gives 70% training,
  15% validation, 15% test, the same on every machine.
- ``fashion_mnist()``: Fashion-MNIST (Xiao et al. 2017; 28x28, 10 classes) from Debian's
  ``dataset-fashion-mnist``, obtained by :mod:`attnkit.tasks.debian` when it is not installed.
  Its 10,000 test images are the test split; the last 6,000 of a fixed permutation (seed 0) of
  the 60,000 training images are the validation split.

>>> data = digits()
>>> data.train.x.shape, data.classes[:3], len(data.test)
(torch.Size([1257, 1, 8, 8]), ('0', '1', '2'), 270)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import register

__all__ = [
    "FASHION",
    "ImageSet",
    "ImageTask",
    "Images",
    "digits",
    "fashion_mnist",
    "read_idx",
    "test_index",
]

FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_DIR = "usr/share/datasets/fashion-mnist"


class Images:
    """Images (N, C, H, W) and labels (N,) as the trainer's data set."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if x.dim() != 4 or len(x) != len(y):
            raise ValueError(
                f"expected images (N, C, H, W) and N labels, got {tuple(x.shape)} "
                f"and {tuple(y.shape)}"
            )
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


@register("vision")
class ImageTask:
    """The trainer's task of an image classifier: validation accuracy selects the epoch; the
    loss is shown beside it."""

    selection_metric = "accuracy"

    def evaluate(self, model: nn.Module, held: Images) -> dict[str, float]:
        from ..train.devices import device_of  # the trainer's extras: only when training

        model.eval()
        device = device_of(model)
        with torch.no_grad():
            logits = torch.cat([model(x.to(device)).cpu() for x in held.x.split(1000)])
        model.train()
        return {
            "accuracy": float((logits.argmax(-1) == held.y).float().mean()),
            "valid_loss": float(F.cross_entropy(logits, held.y)),
        }


def test_index(text: str, n: int, what: str, item: str = "a test image") -> int:
    """The index in ``text`` of one of ``n`` test images (or other ``item``); ValueError naming
    the range otherwise (``what`` reads it: "a captioner")."""
    text = text.strip()
    if not text.isdigit() or int(text) >= n:
        raise ValueError(f"{what} takes the index of {item}: 0..{n - 1}")
    return int(text)


def digits() -> ImageSet:
    """scikit-learn's 8x8 digits with the fixed split of the module docstring."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(raw.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    a, b = int(0.7 * len(x)), int(0.85 * len(x))
    parts = [order[:a], order[a:b], order[b:]]
    return ImageSet(
        "digits", tuple(str(i) for i in range(10)), *(Images(x[p], y[p]) for p in parts)
    )


def read_idx(path) -> Tensor:
    """An IDX file (gzip-compressed or not) of unsigned bytes: images (N, rows, cols) or
    labels (N,), as a uint8 tensor. ValueError for another layout or a truncated file."""
    import gzip
    import math
    from pathlib import Path

    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    start, size = 4 + 4 * dims, math.prod(shape)
    if len(raw) != start + size:
        raise ValueError(f"{path}: {len(raw) - start} bytes of data, expected {size}")
    return torch.frombuffer(bytearray(raw[start:]), dtype=torch.uint8).reshape(shape)


def fashion_mnist() -> ImageSet:
    """Fashion-MNIST with the split of the module docstring (MissingPackageError, one line
    saying how to get the package, when it cannot be had)."""
    from .debian import package_root

    root = package_root("dataset-fashion-mnist", what="Fashion-MNIST") / FASHION_DIR

    def load(kind: str) -> Images:
        x = read_idx(root / f"{kind}-images-idx3-ubyte.gz").float()[:, None] / 255.0
        y = read_idx(root / f"{kind}-labels-idx1-ubyte.gz").long()
        return Images(x, y)

    train, test = load("train"), load("t10k")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    cut = len(train) - len(train) // 10
    keep, held = order[:cut], order[cut:]
    return ImageSet(
        "fashion-mnist",
        FASHION,
        Images(train.x[keep], train.y[keep]),
        Images(train.x[held], train.y[held]),
        test,
    )
