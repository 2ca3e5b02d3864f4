import copy

import pytest
import torch

from attnkit._ext.gru import gru, gru_supported, stacked_weights
from attnkit._ext.native import ENV_DISABLE

F64 = torch.float64
needs_kernel = pytest.mark.skipif(not gru_supported(torch.zeros(1)), reason="no C++ compiler")


def reference(x, lengths, modules, reverse):
    """nn.GRU on each row trimmed to its length (reversed for a reverse direction)."""
    rows = []
    for b in range(x.shape[0]):
        n = int(lengths[b])
        row = x[b : b + 1, :n]
        outs = []
        for g, rev in zip(modules, reverse, strict=True):
            out = g(row.flip(1))[0].flip(1) if rev else g(row)[0]
            outs.append(out[0])
        real = torch.cat(outs, -1)
        rows.append(torch.cat([real, real.new_zeros(x.shape[1] - n, real.shape[1])]))
    return torch.stack(rows)


def grus(n, e, h, dtype=F64, scale=1.0):
    torch.manual_seed(0)
    mods = [torch.nn.GRU(e, h, batch_first=True).to(dtype) for _ in range(n)]
    with torch.no_grad():
        for m in mods:
            for p in m.parameters():
                p.mul_(scale)
    return mods


@needs_kernel
@pytest.mark.reference
@pytest.mark.parametrize(
    "reverse", [(False,), (True,), (False, True), (True, False, True)], ids=str
)
def test_matches_nn_gru_in_float64(reverse):
    mods = grus(len(reverse), 5, 4)
    x = torch.randn(6, 9, 5, dtype=F64, requires_grad=True)
    lengths = torch.tensor([9, 3, 1, 5, 9, 2])
    got = gru(x, lengths, *stacked_weights(*mods), reverse=reverse)
    want = reference(x, lengths, mods, reverse)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    params = [x, *(p for m in mods for p in m.parameters())]
    grad = torch.randn_like(got)
    for a, b in zip(
        torch.autograd.grad(got, params, grad), torch.autograd.grad(want, params, grad), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@needs_kernel
@pytest.mark.reference
def test_gradcheck():
    mods = grus(2, 3, 4)
    x = torch.randn(3, 5, 3, dtype=F64, requires_grad=True)
    lengths = torch.tensor([5, 2, 4])
    weights = [w.detach().requires_grad_() for w in stacked_weights(*mods)]
    fn = lambda x, *w: gru(x, lengths, *w, reverse=(False, True))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, *weights))


@needs_kernel
@pytest.mark.reference
@pytest.mark.parametrize("scale", [1.0, 40.0], ids=["normal", "saturated"])
def test_float32_error_is_small_and_threads_agree(scale):
    """scale 40 drives the gates far into saturation (the exp's clamped range), where the
    recurrence amplifies rounding: there the bound is nn.GRU's own float32 error."""
    mods = grus(2, 16, 24, torch.float32, scale=scale)
    x = torch.randn(32, 20, 16)
    lengths = torch.randint(1, 21, (32,))
    got = gru(x, lengths, *stacked_weights(*mods), reverse=(False, True))
    ref = reference(x.double(), lengths, [copy.deepcopy(m).double() for m in mods], (False, True))
    nn_error = (reference(x, lengths, mods, (False, True)).double() - ref).abs().max()
    assert torch.isfinite(got).all()
    assert (got.double() - ref).abs().max() <= max(2e-5, 2 * nn_error)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = gru(x, lengths, *stacked_weights(*mods), reverse=(False, True))
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, got, atol=0, rtol=0)


@needs_kernel
@pytest.mark.property
def test_padding_is_never_read():
    mods = grus(2, 4, 3)
    x = torch.randn(2, 6, 4, dtype=F64)
    lengths = torch.tensor([6, 3])
    out = gru(x, lengths, *stacked_weights(*mods), reverse=(False, True))
    x2 = x.clone()
    x2[1, 3:] = 1e3  # padding of row 1
    out2 = gru(x2, lengths, *stacked_weights(*mods), reverse=(False, True))
    torch.testing.assert_close(out, out2, atol=0, rtol=0)
    assert (out[1, 3:] == 0).all()


@needs_kernel
@pytest.mark.bad_input
def test_bad_input():
    w = stacked_weights(*grus(2, 4, 3))
    x = torch.randn(2, 5, 4, dtype=F64)
    ok = torch.tensor([5, 2])
    with pytest.raises(ValueError, match=r"\(B, T, E\)"):
        gru(x[0], ok, *w, reverse=(False, True))
    with pytest.raises(ValueError, match="does not fit"):
        gru(torch.randn(2, 5, 3, dtype=F64), ok, *w, reverse=(False, True))
    with pytest.raises(ValueError, match="one flag per direction"):
        gru(x, ok, *w, reverse=(False,))
    with pytest.raises(ValueError, match=r"lie in \[1, 5\]"):
        gru(x, torch.tensor([6, 2]), *w, reverse=(False, True))
    with pytest.raises(ValueError, match=r"lie in \[1, 5\]"):
        gru(x, torch.tensor([0, 2]), *w, reverse=(False, True))
    with pytest.raises(ValueError, match="lengths must be"):
        gru(x, torch.tensor([5]), *w, reverse=(False, True))
    with pytest.raises(ValueError, match="w_hh must be"):
        gru(x, ok, w[0], w[1][:, :, :2], w[2], w[3], reverse=(False, True))
    with pytest.raises(ValueError, match="one-layer"):
        stacked_weights(torch.nn.GRU(4, 3, bidirectional=True))


@pytest.mark.robustness
def test_disabled_kernel_is_not_supported(monkeypatch):
    monkeypatch.setenv(ENV_DISABLE, "1")
    assert not gru_supported(torch.zeros(1))
    with pytest.raises(RuntimeError, match="compiled library"):
        w = stacked_weights(torch.nn.GRU(2, 2))
        gru(torch.zeros(1, 1, 2), torch.tensor([1]), *w, reverse=(False,))


@needs_kernel
@pytest.mark.robustness
def test_second_derivatives_are_refused_clearly():
    mods = grus(1, 3, 2)
    x = torch.randn(2, 4, 3, dtype=F64, requires_grad=True)
    out = gru(x, torch.tensor([4, 2]), *stacked_weights(*mods), reverse=(False,))
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="twice|once_differentiable|does not require grad"):
        g.sum().backward()


@needs_kernel
@pytest.mark.property
def test_gradients_repeat_bit_for_bit():
    """Seeded training needs it: threads must not sum the weight gradients in varying order."""
    mods = grus(2, 16, 24, torch.float32)
    x = torch.randn(64, 20, 16)
    lengths = torch.randint(1, 21, (64,))
    w = [p.detach().requires_grad_() for p in stacked_weights(*mods)]
    grad = torch.randn(64, 20, 48)

    def grads():
        return torch.autograd.grad(gru(x, lengths, *w, reverse=(False, True)), w, grad)

    first = grads()
    for _ in range(5):
        for a, b in zip(first, grads(), strict=True):
            assert torch.equal(a, b)
