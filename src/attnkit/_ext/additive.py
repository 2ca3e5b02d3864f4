"""The fused additive score: a small C++/OpenMP library built on first use, loaded by ctypes.

``additive_block(a, b, v)`` computes s[n, i, j] = sum_h v[h] tanh(a[n, i, h] + b[n, j, h])
without storing the (N, I, J, H) tensor of tanh values, forward and backward (see
``_additive.cpp`` for the arithmetic). It is what the chunked kernel calls for additive scores.

The library is built on first use (see ``native.py``). Where no compiler is available, or
``ATTNKIT_NO_EXTENSION=1`` is set, ``available()`` is False and the chunked kernel computes the
same score with torch operations block by block instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .native import ENV_DISABLE, I64, INT, PTR, Library, suffix

__all__ = ["available", "additive_block", "ENV_DISABLE"]

_LIB = Library(
    "_additive.cpp",
    {
        **{f"attnkit_additive_fwd_{dt}": [PTR] * 4 + [I64] * 4 + [INT] for dt in ("f32", "f64")},
        **{f"attnkit_additive_bwd_{dt}": [PTR] * 7 + [I64] * 4 + [INT] for dt in ("f32", "f64")},
    },
)


def available() -> bool:
    """True if the compiled library loads (building it on the first call)."""
    return _LIB.get() is not None


class _AdditiveBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, v: Tensor) -> Tensor:
        lib = _LIB.get()
        n, i, h = a.shape
        j = b.shape[1]
        a_c, bt, v_c = a.contiguous(), b.transpose(1, 2).contiguous(), v.contiguous()
        s = torch.empty(n, i, j, dtype=a.dtype)
        getattr(lib, f"attnkit_additive_fwd_{suffix(a.dtype)}")(
            a_c.data_ptr(),
            bt.data_ptr(),
            v_c.data_ptr(),
            s.data_ptr(),
            n,
            i,
            j,
            h,
            torch.get_num_threads(),
        )
        ctx.save_for_backward(a_c, bt, v_c)
        return s

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, ds: Tensor):
        lib = _LIB.get()
        a, bt, v = ctx.saved_tensors
        n, i, h = a.shape
        j = bt.shape[2]
        ds = ds.contiguous()
        da, dbt, dv = torch.zeros_like(a), torch.zeros_like(bt), torch.zeros_like(v)
        getattr(lib, f"attnkit_additive_bwd_{suffix(a.dtype)}")(
            a.data_ptr(),
            bt.data_ptr(),
            v.data_ptr(),
            ds.data_ptr(),
            da.data_ptr(),
            dbt.data_ptr(),
            dv.data_ptr(),
            n,
            i,
            j,
            h,
            torch.get_num_threads(),
        )
        return da, dbt.transpose(1, 2), dv


def additive_block(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """sum_h v[h] tanh(a[n, i, h] + b[n, j, h]): a (N, I, H), b (N, J, H), v (H,) -> (N, I, J).

    CPU, float32 or float64, differentiable in a, b and v. Requires ``available()``.
    """
    if a.device.type != "cpu":
        raise ValueError(f"the fused additive score runs on the CPU, got {a.device}")
    return _AdditiveBlock.apply(a, b, v)
