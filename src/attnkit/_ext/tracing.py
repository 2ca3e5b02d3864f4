"""Whether torch is tracing the code now (``torch.export`` / ``torch.compile``, or the
TorchScript tracer that ``torch.onnx``'s older exporter uses). A traced graph keeps no Python
branch on tensor values and cannot call attnkit's compiled C++ kernels, so code that does
either takes its plain-operator path while this is true."""

from __future__ import annotations

import torch


def tracing() -> bool:
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())
