"""test_keras_layers.py again on every installed Keras backend besides the one this run uses,
each in its own process (Keras reads its backend once)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):  # pragma: no cover - Keras 3.15 needs Python 3.11
    pytest.skip("attnkit.keras needs Python >= 3.11 (Keras 3)", allow_module_level=True)

BACKEND = os.environ.get("KERAS_BACKEND", "torch")
LAYERS = Path(__file__).with_name("test_keras_layers.py")


def _other_backends() -> list[str]:
    found = [b for b in ("jax", "torch", "tensorflow") if importlib.util.find_spec(b)]
    assert "jax" in found, "the tests run Keras on JAX too: install attnkit[dev]"
    return [b for b in found if b != BACKEND]


@pytest.mark.parametrize("backend", _other_backends())
def test_the_layer_tests_pass_on_every_other_backend(backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    env.pop("PYTEST_XDIST_WORKER", None)
    # the .keras round trip's new process runs on the backend of the main run only
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    cmd += [str(LAYERS), "-o", "addopts=", "-W", "ignore::DeprecationWarning"]
    cmd += ["-k", "not new_process"]
    done = subprocess.run(cmd, env=env, capture_output=True, cwd=Path(__file__).parents[2])
    tail = done.stdout.decode()[-3000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
    assert backend == "torch" or "skipped" not in tail  # float64 ran (JAX: x64 for that test)
