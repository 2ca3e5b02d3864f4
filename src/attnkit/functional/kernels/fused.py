"""The fused additive score: a small C++/OpenMP library built on first use, loaded by ctypes.

``additive_block(a, b, v)`` computes s[n, i, j] = sum_h v[h] tanh(a[n, i, h] + b[n, j, h])
without storing the (N, I, J, H) tensor of tanh values, forward and backward (see
``_additive.cpp`` for the arithmetic). It is what the chunked kernel calls for additive scores.

The library is compiled once per machine with the system C++ compiler (g++, or $CXX) into
``$ATTNKIT_CACHE`` (default ``~/.cache/attnkit``), under a name that hashes the source, the
compiler and the CPU; later processes load the cached file. Where no compiler is available, or
``ATTNKIT_NO_EXTENSION=1`` is set, ``available()`` is False and the chunked kernel computes the
same score with torch operations block by block instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["available", "additive_block", "ENV_DISABLE", "build"]

ENV_DISABLE = "ATTNKIT_NO_EXTENSION"
_SOURCE = Path(__file__).with_name("_additive.cpp")
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_P, _I64 = ctypes.c_void_p, ctypes.c_int64


def _disabled() -> bool:
    return os.environ.get(ENV_DISABLE, "").strip() not in ("", "0")


def _cache_dir() -> Path:
    root = os.environ.get("ATTNKIT_CACHE") or Path.home() / ".cache" / "attnkit"
    return Path(root) / "ext"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def build() -> Path:
    """Compile the library if it is not cached; return its path. Raises on failure."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise RuntimeError("no C++ compiler found (set CXX)")
    flags = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17"]
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(
        "\0".join(
            [_SOURCE.read_text(), cxx, version, " ".join(flags), _cpu_flags(), platform.machine()]
        ).encode()  # fmt: skip
    ).hexdigest()[:16]
    target = _cache_dir() / f"attnkit_additive_{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        proc = subprocess.run([cxx, *flags, str(_SOURCE), "-o", str(out)], capture_output=True,
                              text=True)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {_SOURCE.name} failed:\n{proc.stderr[-2000:]}")
        os.replace(out, target)  # atomic: a concurrent build leaves one complete file
    return target


def _load() -> ctypes.CDLL | None:
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if _disabled():
            return None
        try:
            lib = ctypes.CDLL(str(build()))
            for dt in ("f32", "f64"):
                getattr(lib, f"attnkit_additive_fwd_{dt}").argtypes = (
                    [_P] * 4 + [_I64] * 4 + [ctypes.c_int]
                )
                getattr(lib, f"attnkit_additive_bwd_{dt}").argtypes = (
                    [_P] * 7 + [_I64] * 4 + [ctypes.c_int]
                )
            _lib = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            _log.warning("attnkit: fused additive score unavailable, using torch ops: %s", err)
        return _lib


def available() -> bool:
    """True if the compiled library loads (building it on the first call)."""
    return not _disabled() and _load() is not None


def _suffix(dtype: torch.dtype) -> str:
    if dtype == torch.float32:
        return "f32"
    if dtype == torch.float64:
        return "f64"
    raise TypeError(f"fused additive score takes float32 or float64, got {dtype}")


class _AdditiveBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, v: Tensor) -> Tensor:
        lib = _load()
        n, i, h = a.shape
        j = b.shape[1]
        a_c, bt, v_c = a.contiguous(), b.transpose(1, 2).contiguous(), v.contiguous()
        s = torch.empty(n, i, j, dtype=a.dtype)
        getattr(lib, f"attnkit_additive_fwd_{_suffix(a.dtype)}")(
            a_c.data_ptr(), bt.data_ptr(), v_c.data_ptr(), s.data_ptr(), n, i, j, h,
            torch.get_num_threads(),
        )  # fmt: skip
        ctx.save_for_backward(a_c, bt, v_c)
        return s

    @staticmethod
    def backward(ctx, ds: Tensor):
        lib = _load()
        a, bt, v = ctx.saved_tensors
        n, i, h = a.shape
        j = bt.shape[2]
        ds = ds.contiguous()
        da, dbt, dv = torch.zeros_like(a), torch.zeros_like(bt), torch.zeros_like(v)
        getattr(lib, f"attnkit_additive_bwd_{_suffix(a.dtype)}")(
            a.data_ptr(), bt.data_ptr(), v.data_ptr(), ds.data_ptr(), da.data_ptr(),
            dbt.data_ptr(), dv.data_ptr(), n, i, j, h, torch.get_num_threads(),
        )  # fmt: skip
        return da, dbt.transpose(1, 2), dv


def additive_block(a: Tensor, b: Tensor, v: Tensor) -> Tensor:
    """sum_h v[h] tanh(a[n, i, h] + b[n, j, h]): a (N, I, H), b (N, J, H), v (H,) -> (N, I, J).

    CPU, float32 or float64, differentiable in a, b and v. Requires ``available()``.
    """
    if a.device.type != "cpu":
        raise ValueError(f"the fused additive score runs on the CPU, got {a.device}")
    return _AdditiveBlock.apply(a, b, v)
