import pytest
import torch

from attnkit import masked_softmax


@pytest.mark.property
def test_rows_sum_to_one_and_masked_entries_are_zero():
    s = torch.randn(4, 6, 9)
    m = torch.rand(4, 6, 9) > 0.4
    m[..., 0] = True
    w = masked_softmax(s, m)
    torch.testing.assert_close(w.sum(-1), torch.ones(4, 6))
    assert (w[~m] == 0).all()


@pytest.mark.robustness
def test_fully_masked_rows_are_zero_with_zero_gradient():
    s = torch.randn(2, 3, 5, requires_grad=True)
    m = torch.ones(2, 3, 5, dtype=torch.bool)
    m[0, 1] = False
    w = masked_softmax(s, m)
    assert (w[0, 1] == 0).all()
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(s.grad).all()
    assert (s.grad[0, 1] == 0).all()


@pytest.mark.robustness
@pytest.mark.parametrize("magnitude", [1e4, -1e4])
def test_extreme_logits_stay_finite(magnitude):
    s = torch.full((2, 5), magnitude, requires_grad=True)
    with torch.no_grad():
        s[:, 0] = -magnitude
    w = masked_softmax(s, torch.tensor([True, True, False, True, True]))
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    w[:, 1].sum().backward()
    assert torch.isfinite(s.grad).all()
