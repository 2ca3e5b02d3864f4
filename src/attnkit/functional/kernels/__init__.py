"""Kernel registry: each kernel has ``unsupported(request) -> str | None`` (why it cannot serve
the request, or None) and ``run(request)``.

``eager`` is the reference that serves every request; the others are checked against it:
``sdpa`` (torch's fused kernel, dot-product scores), ``chunked`` (online softmax over blocks,
any score, memory O(T)), ``linear`` (``score="linear"``, Katharopoulos et al. 2020).
"""

from __future__ import annotations

from types import ModuleType

from . import chunked, eager, linear, sdpa
from .request import Request

KERNELS: dict[str, ModuleType] = {
    "eager": eager,
    "sdpa": sdpa,
    "chunked": chunked,
    "linear": linear,
}

__all__ = ["KERNELS", "Request"]
