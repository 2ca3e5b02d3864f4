"""Small C++/OpenMP libraries built on first use with the system compiler, loaded by ctypes.

Each library is one ``.cpp`` file next to this module (it may include the ``.h`` files here)
with ``extern "C"`` entry points. It is compiled once per machine with the system C++ compiler
(g++, or $CXX) into ``$ATTNKIT_CACHE`` (default ``~/.cache/attnkit``), under a name that hashes
the sources, the compiler and the CPU; later processes load the cached file. Where no compiler
is available, or ``ATTNKIT_NO_EXTENSION=1`` is set, ``Library.get()`` returns None and callers
use torch operations instead.
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

__all__ = ["ENV_DISABLE", "Library", "PTR", "I64", "INT", "suffix"]

ENV_DISABLE = "ATTNKIT_NO_EXTENSION"
PTR, I64, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
# -fno-trapping-math lets the compiler vectorise branch-free clamps (see _vecmath.h)
_FLAGS = [
    "-O3",
    "-march=native",
    "-fno-trapping-math",
    "-fopenmp",
    "-shared",
    "-fPIC",
    "-std=c++17",
]
_log = logging.getLogger(__name__)


def disabled() -> bool:
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


def suffix(dtype: torch.dtype) -> str:
    """The entry points' dtype suffix: f32 or f64."""
    if dtype == torch.float32:
        return "f32"
    if dtype == torch.float64:
        return "f64"
    raise TypeError(f"the compiled kernels take float32 or float64, got {dtype}")


class Library:
    """One source file's compiled library; ``signatures`` maps entry points to argtypes."""

    def __init__(self, source: str, signatures: dict[str, list]) -> None:
        self.source = Path(__file__).with_name(source)
        self.signatures = signatures
        self._lib: ctypes.CDLL | None = None
        self._tried = False
        self._lock = threading.Lock()

    def build(self) -> Path:
        """Compile the library if it is not cached; return its path. Raises on failure."""
        cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
        if not cxx:
            raise RuntimeError("no C++ compiler found (set CXX)")
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
        headers = sorted(self.source.parent.glob("*.h"))  # what the sources may include
        text = "\0".join(f.read_text() for f in [self.source, *headers])
        parts = [text, cxx, version, " ".join(_FLAGS), _cpu_flags(), platform.machine()]
        key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        target = _cache_dir() / f"attnkit{self.source.stem}_{key}.so"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            proc = subprocess.run(
                [cxx, *_FLAGS, str(self.source), "-o", str(out)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise RuntimeError(f"compiling {self.source.name} failed:\n{proc.stderr[-2000:]}")
            os.replace(out, target)  # atomic: a concurrent build leaves one complete file
        return target

    def get(self) -> ctypes.CDLL | None:
        """The loaded library (built on the first call), or None where it cannot be had."""
        if disabled():
            return None
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    lib = ctypes.CDLL(str(self.build()))
                    for name, argtypes in self.signatures.items():
                        getattr(lib, name).argtypes = argtypes
                    self._lib = lib
                except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as err:
                    _log.warning(
                        "attnkit: %s unavailable, using torch ops: %s", self.source.name, err
                    )
            return self._lib
