"""The adding and multiplying problems against the protocol of Hochreiter & Schmidhuber 1997
as Raffel & Ellis 2015 use it."""

import pytest
import torch

from attnkit.tasks.longmemory import TOLERANCE, make_batch


@pytest.mark.parametrize("problem", ["add", "multiply"])
@pytest.mark.parametrize("length", [4, 10, 57, 1000])
def test_batches_follow_the_protocol(problem, length):
    b = make_batch(problem, 64, length, generator=torch.Generator().manual_seed(length))
    longest = int(b.lengths.max())
    assert b.x.shape == (64, longest, 2)
    assert ((b.lengths >= length) & (b.lengths < max(length + 1, 1.1 * length))).all()
    for i in range(64):
        n = int(b.lengths[i])
        values, markers = b.x[i, :, 0], b.x[i, :, 1]
        assert (b.x[i, n:] == 0).all()  # padding
        ones = torch.nonzero(markers[:n] == 1).flatten().tolist()
        first, second = b.marked[i].tolist()
        assert ones == [first, second]
        assert markers[0] == -1 and markers[n - 1] == -1
        assert (markers[:n] != 0).sum() == 4  # -1, 1, 1, -1
        assert 1 <= first < max(2, n // 10) and n // 2 <= second <= n - 2
        lo = -1.0 if problem == "add" else 0.0
        assert ((values[:n] >= lo) & (values[:n] <= 1)).all()
        x1, x2 = values[first], values[second]
        want = 0.5 + (x1 + x2) / 4 if problem == "add" else x1 * x2
        assert torch.isclose(b.y[i], want)
        assert 0 <= b.y[i] <= 1


def test_markers_spread_over_their_ranges_and_the_tolerance_is_the_papers():
    b = make_batch("add", 2000, 100, generator=torch.Generator().manual_seed(0))
    first, second = b.marked[:, 0], b.marked[:, 1]
    assert first.min() == 1 and first.max() == 9
    assert second.min() == 50 and second.max() >= 105
    assert TOLERANCE == 0.04


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown problem"):
        make_batch("xor", 2, 10)
    with pytest.raises(ValueError, match="length >= 4"):
        make_batch("add", 2, 3)
