import pytest
import torch

from attnkit import masks
from reference import ref_causal, ref_window

SIZES = [(1, 1), (4, 4), (2, 5), (5, 2), (7, 97)]


@pytest.mark.reference
@pytest.mark.parametrize("tq,tk", SIZES)
def test_causal_matches_loops(tq, tk):
    assert torch.equal(masks.causal(tq, tk), ref_causal(tq, tk))


@pytest.mark.reference
@pytest.mark.parametrize("tq,tk", SIZES)
@pytest.mark.parametrize("left,right", [(0, 0), (1, 0), (2, 3), (None, 0), (1, None), (None, None)])
def test_window_matches_loops(tq, tk, left, right):
    assert torch.equal(masks.window(tq, tk, left, right), ref_window(tq, tk, left, right))


@pytest.mark.property
def test_causal_last_query_sees_everything_when_decoding():
    m = masks.causal(1, 6)
    assert m.all()


@pytest.mark.property
def test_window_unbounded_left_is_causal():
    assert torch.equal(masks.window(5, 5, None, 0), masks.causal(5))


@pytest.mark.property
def test_padding():
    m = masks.padding(torch.tensor([3, 0, 1]), 4)
    expected = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(m, expected)
    assert masks.padding(torch.tensor([2, 5])).shape == (2, 5)


@pytest.mark.property
def test_combine():
    a, b = masks.causal(3), masks.padding(torch.tensor([2, 3]), 3)[:, None, :]
    c = masks.combine(a, None, b)
    assert c.shape == (2, 3, 3)
    assert torch.equal(c, a & b)
    assert masks.combine(None, None) is None


@pytest.mark.bad_input
def test_padding_rejects_bad_lengths():
    with pytest.raises(ValueError, match="exceeds max_len"):
        masks.padding(torch.tensor([5]), 3)
    with pytest.raises(ValueError, match=">= 0"):
        masks.padding(torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="integer"):
        masks.padding(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="1-D"):
        masks.padding(torch.tensor([[1, 2]]))


@pytest.mark.bad_input
def test_window_and_causal_reject_bad_sizes():
    with pytest.raises(ValueError, match="left"):
        masks.window(3, 3, -1, 0)
    with pytest.raises(ValueError, match="Tq=0"):
        masks.causal(0, 3)


@pytest.mark.bad_input
def test_combine_rejects_float_masks():
    with pytest.raises(ValueError, match="bool"):
        masks.combine(torch.zeros(3, 3))
