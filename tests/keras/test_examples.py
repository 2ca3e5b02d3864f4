"""examples/keras/ runs as a reader would run it, at a tiny size: each script trains, reports
its held-out score, saves its .keras model and draws its attention."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):  # pragma: no cover - Keras 3.15 needs Python 3.11
    pytest.skip("attnkit.keras needs Python >= 3.11 (Keras 3)", allow_module_level=True)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "keras"
RUNS = {
    "dates.py": ["--n", "300", "--held-out", "50", "--epochs", "1"],
    "lstm_attention.py": ["--n", "100", "--length", "8", "--epochs", "1"],
}


@pytest.mark.parametrize("script", sorted(RUNS))
def test_the_example_trains_saves_and_draws(script, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *RUNS[script], "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "held-out" in done.stdout
    assert (out / "attention.png").stat().st_size > 1000
    assert (out / "model.keras").stat().st_size > 1000  # reloading: test_keras_layers.py
