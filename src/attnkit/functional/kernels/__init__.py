"""Kernel registry: each kernel has ``supports(request) -> bool`` and ``run(request)``.

``eager`` is the reference that serves every request; the others are checked against it.
"""

from __future__ import annotations

from types import ModuleType

from . import eager, sdpa
from .request import Request

KERNELS: dict[str, ModuleType] = {"eager": eager, "sdpa": sdpa}

__all__ = ["KERNELS", "Request"]
