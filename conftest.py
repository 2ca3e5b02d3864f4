"""Docstring examples run under pytest (--doctest-modules) with the names a reader of the
docs has: ``torch`` and every public name of ``attnkit``."""

import os

import pytest
import torch

import attnkit

# attnkit.keras: Keras reads its backend once, at its first import; torch (attnkit has it)
# unless the run asks for another (KERAS_BACKEND=jax or tensorflow)
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace["torch"] = torch
    doctest_namespace["ak"] = attnkit
    for name in attnkit.__all__:
        doctest_namespace[name] = getattr(attnkit, name)
    torch.manual_seed(0)
