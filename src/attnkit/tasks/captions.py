"""Images of several handwritten digits and the digit string they spell: the data of the
captioner (a Show, Attend and Tell model writes the string while it attends over the image).

:func:`compose` places 2 to 4 digit images from one split of :func:`~attnkit.tasks.images.digits`
on a blank canvas, read left to right: in a row (8 x 40 pixels, a random gap of 0-2 pixels
between digits and a random left margin) or in a 2 x 2 grid (16 x 16, read row by row). It
returns each digit's box, so a test can measure how much attention falls on the digit being
written. Strings are split by a hash: a string of the test split is never a training string,
and the digit images come from the digits' own splits, so test images are unseen too.

>>> from attnkit.tasks.images import digits
>>> data = compose(digits().train, 5, seed=0, split="train")
>>> data.x.shape, len(data.strings), data.boxes[0][0]
(torch.Size([5, 1, 8, 40]), 5, (0, 8, 14, 22))
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from .images import Images

__all__ = ["LAYOUTS", "Captions", "compose", "is_test_string"]

LAYOUTS = {"row": (8, 40), "grid": (16, 16)}  # canvas (H, W)
CELL = 8


def is_test_string(text: str) -> bool:
    """Whether a digit string belongs to the test split (one in five, by a hash)."""
    return zlib.crc32(text.encode("ascii")) % 5 == 0


@dataclass
class Captions:
    x: Tensor  # (N, 1, H, W) in [0, 1]
    strings: list[str]
    boxes: list[list[tuple[int, int, int, int]]]  # per digit: (top, bottom, left, right)


def compose(source: Images, n: int, *, seed: int = 0, split: str = "train",
            layout: str = "row", lengths: tuple[int, int] = (2, 4)) -> Captions:  # fmt: skip
    """``n`` images of ``lengths[0]``..``lengths[1]`` digits drawn from ``source`` (fixed by
    ``seed``), whose strings belong to ``split`` ("train" or "test", see
    :func:`is_test_string`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    low, high = lengths
    if not 1 <= low <= high <= 4:  # a row of 40 pixels or a 2 x 2 grid holds 4 digits
        raise ValueError(f"lengths must satisfy 1 <= low <= high <= 4, got {lengths}")
    by_digit = {d: torch.nonzero(source.y == d)[:, 0].tolist() for d in range(10)}
    if any(not rows for rows in by_digit.values()):
        raise ValueError("the source lacks images of some digit")
    rng = random.Random(seed)
    h, w = LAYOUTS[layout]
    x = torch.zeros(n, 1, h, w)
    strings, boxes = [], []
    for i in range(n):
        while True:
            text = "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))
            if is_test_string(text) == (split == "test"):
                break
        places = []
        if layout == "row":
            gaps = [rng.randint(0, 2) for _ in text]
            left = rng.randint(0, w - CELL * len(text) - sum(gaps[1:]))
            for k in range(len(text)):
                places.append((0, left))
                left += CELL + (gaps[k + 1] if k + 1 < len(text) else 0)
        else:
            places = [((k // 2) * CELL, (k % 2) * CELL) for k in range(len(text))]
        for ch, (top, left) in zip(text, places, strict=True):
            image = source.x[rng.choice(by_digit[int(ch)])]
            x[i, :, top : top + CELL, left : left + CELL] = image
        strings.append(text)
        boxes.append([(top, top + CELL, left, left + CELL) for top, left in places])
    return Captions(x, strings, boxes)
