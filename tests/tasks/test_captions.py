"""The captioner's images: every digit lies in its box, read left to right; test strings are
never training strings; the same seed gives the same images."""

import pytest
import torch

from attnkit.tasks import captions
from attnkit.tasks.images import digits


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.mark.parametrize("layout", ["row", "grid"])
def test_each_digit_lies_in_its_box_and_nothing_outside(data, layout):
    got = captions.compose(data.train, 60, seed=1, layout=layout)
    sources = {d: data.train.x[data.train.y == d] for d in range(10)}
    for image, text, boxes in zip(got.x, got.strings, got.boxes, strict=True):
        assert 2 <= len(text) <= 4 and len(boxes) == len(text)
        lefts = [(b[0], b[2]) for b in boxes]
        assert lefts == sorted(lefts)  # reading order: by row, then left to right
        covered = torch.zeros_like(image, dtype=torch.bool)
        for ch, (top, bottom, left, right) in zip(text, boxes, strict=True):
            patch = image[:, top:bottom, left:right]
            assert (sources[int(ch)] == patch).flatten(1).all(1).any()  # that digit's image
            assert not covered[:, top:bottom, left:right].any()  # boxes never overlap
            covered[:, top:bottom, left:right] = True
        assert image[~covered].eq(0).all()


def test_test_strings_are_never_training_strings_and_seeds_repeat(data):
    train = captions.compose(data.train, 300, seed=0, split="train")
    test = captions.compose(data.test, 100, seed=0, split="test")
    assert not set(train.strings) & set(test.strings)
    assert all(captions.is_test_string(s) for s in test.strings)
    again = captions.compose(data.train, 300, seed=0, split="train")
    assert torch.equal(again.x, train.x) and again.strings == train.strings


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kw, message",
    [
        ({"layout": "ring"}, "layout"),
        ({"lengths": (0, 3)}, "lengths"),
        ({"lengths": (2, 5)}, "lengths"),
        ({"split": "dev"}, "split"),
    ],
)
def test_bad_arguments_are_refused(data, kw, message):
    with pytest.raises(ValueError, match=message):
        captions.compose(data.train, 2, **kw)
