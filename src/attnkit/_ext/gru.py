"""GRU recurrences for padded batches on a CPU, with a compiled forward and backward pass.

``nn.GRU`` on a CPU records about a dozen autograd nodes per time step and runs every row to
the batch's longest length. For a character-level encoder (a batch of 128, 48 units, inputs of
10 to 35 characters) that bookkeeping, not the arithmetic, is most of the cost. :func:`gru`
computes all input projections with one matrix product, then runs each (row, direction)
recurrence to the row's own length in ``_gru.cpp`` (threads split the rows), and in the
backward pass returns the input-side gradients as one matrix product again.

The cell is ``nn.GRU``'s (Cho et al. 2014, with the reset gate applied after the recurrent
product, as in cuDNN), with the same parameters, so an ``nn.GRU``'s weights work unchanged:

    r = sigma(W_ir x + b_ir + W_hr h + b_hr)
    z = sigma(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .native import I64, INT, PTR, Library, suffix
from .tracing import tracing

__all__ = ["gru", "gru_supported", "stacked_weights"]

_SIG = {
    **{f"attnkit_gru_fwd_{dt}": [PTR] * 7 + [I64] * 4 + [INT] for dt in ("f32", "f64")},
    **{f"attnkit_gru_bwd_{dt}": [PTR] * 9 + [I64] * 4 + [INT] for dt in ("f32", "f64")},
}
_LIB = Library("_gru.cpp", _SIG)


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lengths, rev, w_ih, w_hh, b_ih, b_hh):  # all contiguous (see gru)
        lib = _LIB.get()
        b, t, e = x.shape
        d, g, h = w_hh.shape
        # input projections of every position and direction at once: (B, T, D, 3H)
        gi = torch.addmm(b_ih.reshape(-1), x.reshape(b * t, e), w_ih.reshape(d * g, e).t())
        out = x.new_empty(b, t, d, h)  # written whole, zeros past each length
        saved = x.new_empty(b, t, d, 4 * h)
        wt_hh = w_hh.transpose(1, 2).contiguous()
        getattr(lib, f"attnkit_gru_fwd_{suffix(x.dtype)}")(
            gi.data_ptr(),
            wt_hh.data_ptr(),
            b_hh.data_ptr(),
            lengths.data_ptr(),
            rev.data_ptr(),
            out.data_ptr(),
            saved.data_ptr(),
            b,
            t,
            d,
            h,
            torch.get_num_threads(),
        )
        ctx.save_for_backward(x, lengths, rev, w_ih, w_hh, out, saved)
        return out.view(b, t, d * h)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        lib = _LIB.get()
        x, lengths, rev, w_ih, w_hh, out, saved = ctx.saved_tensors
        b, t, e = x.shape
        d, g, h = w_hh.shape
        grad = grad.contiguous()
        d_gi = x.new_empty(b, t, d, g)
        dw_hh, db_hh = torch.zeros_like(w_hh), x.new_zeros(d, g)
        getattr(lib, f"attnkit_gru_bwd_{suffix(x.dtype)}")(
            grad.data_ptr(),
            out.data_ptr(),
            saved.data_ptr(),
            w_hh.data_ptr(),
            lengths.data_ptr(),
            rev.data_ptr(),
            d_gi.data_ptr(),
            dw_hh.data_ptr(),
            db_hh.data_ptr(),
            b,
            t,
            d,
            h,
            torch.get_num_threads(),
        )
        flat = d_gi.view(b * t, d * g)
        grad_x = (flat @ w_ih.reshape(d * g, e)).view(b, t, e)
        grad_w_ih = (flat.t() @ x.reshape(b * t, e)).view(d, g, e)
        return grad_x, None, None, grad_w_ih, dw_hh, flat.sum(0).view(d, g), db_hh


def gru_supported(x: Tensor) -> bool:
    """Whether :func:`gru` can run on ``x`` here (CPU, float32/64, the library builds, not
    while torch traces the model for export or compilation: the graph holds nn.GRU instead)."""
    return (
        x.device.type == "cpu"
        and not tracing()
        and x.dtype in (torch.float32, torch.float64)
        and _LIB.get() is not None
    )


def gru(
    x: Tensor,
    lengths: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    reverse: Sequence[bool],
) -> Tensor:
    """D GRUs over a padded batch, each row to its own length, from a zero state.

    x: (B, T, E); lengths: (B,) with 1 <= length <= T; w_ih: (D, 3H, E); w_hh: (D, 3H, H);
    b_ih, b_hh: (D, 3H), in ``nn.GRU``'s gate order (r, z, n); ``reverse[d]``: direction d reads
    each row from its last real position back to the first. Returns (B, T, D * H): the state of
    each direction after reading each position (for a reverse direction, after positions
    t .. length - 1), zeros past each row's length. Requires ``gru_supported(x)``.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (B, T, E), got shape {tuple(x.shape)}")
    d, g, e = w_ih.shape
    h = g // 3
    if g % 3 or x.shape[2] != e:
        raise ValueError(f"x {tuple(x.shape)} does not fit w_ih {tuple(w_ih.shape)}")
    if w_hh.shape != (d, g, h) or b_ih.shape != (d, g) or b_hh.shape != (d, g):
        raise ValueError(f"w_hh must be ({d}, {g}, {h}) and the biases ({d}, {g})")
    if len(reverse) != d:
        raise ValueError(f"reverse needs one flag per direction ({d}), got {len(reverse)}")
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"lengths must be ({x.shape[0]},), got {tuple(lengths.shape)}")
    lengths = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    if x.shape[0] and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]):
        raise ValueError(f"lengths must lie in [1, {x.shape[1]}]")
    if not gru_supported(x):
        raise RuntimeError("gru needs a CPU float32/float64 tensor and the compiled library")
    rev = torch.tensor([bool(r) for r in reverse], dtype=torch.int32)
    dtype = x.dtype
    w_ih, w_hh, b_ih, b_hh = (p.to(dtype).contiguous() for p in (w_ih, w_hh, b_ih, b_hh))
    return _GRU.apply(x.contiguous(), lengths, rev, w_ih, w_hh, b_ih, b_hh)


def stacked_weights(*grus: torch.nn.GRU) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(w_ih, w_hh, b_ih, b_hh) of one-layer ``nn.GRU`` modules, stacked for :func:`gru`."""
    for g in grus:
        if g.num_layers != 1 or g.bidirectional or not g.bias:
            raise ValueError("stacked_weights takes one-layer, one-direction GRUs with biases")
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    return tuple(torch.stack([getattr(g, n) for g in grus]) for n in names)
