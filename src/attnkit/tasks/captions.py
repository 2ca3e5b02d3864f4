"""Images of several handwritten digits and the digit string they spell: the data of the
captioner (a Show, Attend and Tell model writes the string while it attends over the image).

:func:`compose` places 2 to 4 digit images from one split of :func:`~attnkit.tasks.images.digits`
on a blank canvas, read left to right: in a row (8 x 40 pixels, a random gap of 0-2 pixels
between digits and a random left margin) or in a 2 x 2 grid (16 x 16, read row by row). It
returns each digit's box, so a test can measure how much attention falls on the digit being
written. Strings are split by a hash (:func:`string_split`: 3 in 5 train, 1 in 5 validation,
1 in 5 test): a test string is never a training or validation string, and the digit images
come from the digits' own splits, so test images are unseen too.

:class:`CaptionTask` is the trainer's task: digit strings as ids (with end of sequence), exact
sequence accuracy of greedy decoding, and :func:`box_share`, the attention mass that falls in
the box of the digit being written.

>>> from attnkit.tasks.images import digits
>>> data = compose(digits().train, 5, seed=0, split="train")
>>> data.x.shape, len(data.strings), data.boxes[0][0]
(torch.Size([5, 1, 8, 40]), 5, (0, 8, 1, 9))
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from .base import register
from .images import Images
from .metrics import char_accuracy, exact_match
from .vocab import CharVocab

__all__ = [
    "LAYOUTS",
    "CaptionData",
    "CaptionTask",
    "Captions",
    "box_share",
    "compose",
    "is_test_string",
    "string_split",
]

LAYOUTS = {"row": (8, 40), "grid": (16, 16)}  # canvas (H, W)
CELL = 8


SPLITS = ("train", "valid", "test")


def string_split(text: str) -> str:
    """The split a digit string belongs to, by a hash: test 1 in 5, valid 1 in 5, else train."""
    return {0: "test", 1: "valid"}.get(zlib.crc32(text.encode("ascii")) % 5, "train")


def is_test_string(text: str) -> bool:
    """Whether a digit string belongs to the test split (one in five, by a hash)."""
    return string_split(text) == "test"


@dataclass
class Captions:
    x: Tensor  # (N, 1, H, W) in [0, 1]
    strings: list[str]
    boxes: list[list[tuple[int, int, int, int]]]  # per digit: (top, bottom, left, right)


def compose(
    source: Images,
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    layout: str = "row",
    lengths: tuple[int, int] = (2, 4),
) -> Captions:
    """``n`` images of ``lengths[0]``..``lengths[1]`` digits drawn from ``source`` (fixed by
    ``seed``), whose strings belong to ``split`` ("train", "valid" or "test", see
    :func:`string_split`)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be train, valid or test, got {split!r}")
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
            if string_split(text) == split:
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


def box_share(weights: Tensor, box: tuple[int, int, int, int], size: tuple[int, int]) -> float:
    """The share of one step's attention (H', W') that falls inside ``box`` (top, bottom,
    left, right) of an image of ``size`` (H, W): each grid cell's weight is spread evenly
    over the pixels it stands for (an H / H' x W / W' block)."""
    h, w = size
    gh, gw = weights.shape
    if h % gh or w % gw:
        raise ValueError(f"a grid of {gh}x{gw} does not tile an image of {h}x{w}")
    top, bottom, left, right = box
    pixels = weights.double().repeat_interleave(h // gh, 0).repeat_interleave(w // gw, 1)
    pixels = pixels / pixels.sum()
    return float(pixels[top:bottom, left:right].sum())


class CaptionData:
    """Captioned images as the trainer's data set: ``batch(rows)`` gives ``x`` (B, 1, H, W) and
    ``tgt`` (B, T): the digits' ids, end of sequence, then padding."""

    def __init__(self, captions: Captions, vocab: CharVocab) -> None:
        self.captions, self.vocab = captions, vocab
        self.ids = [torch.tensor(vocab.encode(s, eos=True)) for s in captions.strings]

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, rows) -> SimpleNamespace:
        rows = torch.as_tensor(rows).reshape(-1)
        tgt = nn.utils.rnn.pad_sequence(
            [self.ids[i] for i in rows.tolist()], batch_first=True, padding_value=self.vocab.pad_id
        )
        return SimpleNamespace(x=self.captions.x[rows], tgt=tgt)


@register("caption")
class CaptionTask:
    """Digit strings read from images: the vocabulary, the data and the metrics.

    Exact sequence accuracy of greedy decoding selects the epoch; beside it, character
    accuracy and ``box_share``: at every step k that writes the k-th digit of the truth, the
    share of the attention inside that digit's box, averaged over steps and images (uniform
    attention would give a box's area over the image's)."""

    selection_metric = "exact_match"

    def __init__(self, layout: str = "row", lengths: tuple[int, int] = (2, 4)) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout, self.lengths = layout, tuple(lengths)
        self.vocab = CharVocab("0123456789")

    @property
    def max_output_len(self) -> int:
        return self.lengths[1] + 1  # the digits, then end of sequence

    def data(self, source: Images, n: int, split: str, seed: int = 0) -> CaptionData:
        captions = compose(
            source, n, seed=seed, split=split, layout=self.layout, lengths=self.lengths
        )
        return CaptionData(captions, self.vocab)

    def predict_rows(self, model, data: CaptionData, rows, batch_size: int = 512) -> list:
        """(string, the box share of each digit written, or None past the output's end) of the
        examples ``rows``, in order."""
        from ..models.decoding import greedy
        from ..train.devices import device_of

        was_training = model.training
        model.eval()
        device = device_of(model)
        rows = list(rows)
        out = []
        size = tuple(data.captions.x.shape[-2:])
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                decoded = greedy(model, data.captions.x[part].to(device), None)
                weights = decoded.weights.cpu()
                for i, r in enumerate(part):
                    text = self.vocab.decode(decoded.ids[i])
                    boxes = data.captions.boxes[r]
                    written = len(decoded.ids[i])  # steps past the output's end wrote nothing
                    shares = [
                        box_share(weights[i, k], box, size) if k < written else None
                        for k, box in enumerate(boxes)
                    ]
                    out.append((text, shares))
        model.train(was_training)
        return out

    def score(self, data: CaptionData, predictions: list) -> dict[str, float]:
        truth = data.captions.strings
        if len(predictions) != len(truth):
            raise ValueError(f"{len(predictions)} outputs for {len(truth)} images")
        texts = [p for p, _ in predictions]
        shares = [s for _, row in predictions for s in row if s is not None]
        return {
            "exact_match": exact_match(texts, truth),
            "char_accuracy": char_accuracy(texts, truth),
            "box_share": sum(shares) / max(len(shares), 1),
            "n": len(truth),
        }

    def evaluate(self, model, data: CaptionData) -> dict[str, float]:
        return self.score(data, self.predict_rows(model, data, range(len(data))))

    def to_config(self) -> dict:
        return {"name": "caption", "layout": self.layout, "lengths": list(self.lengths)}

    @classmethod
    def from_config(cls, config: dict) -> CaptionTask:
        return cls(config.get("layout", "row"), tuple(config.get("lengths", (2, 4))))
