"""The core installs and imports with torch alone: no plotting, task-data or trainer packages."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = (
    "matplotlib",
    "matplotlib_fontja",
    "faker",
    "babel",
    "safetensors",
    "tqdm",
    "wcwidth",
    "torchinfo",
    "pysword",
    "sentencepiece",
    "sacrebleu",
    "pandas",
    "sklearn",
)

BLOCKED = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""

CORE = """
import torch
import attnkit as ak
from attnkit import models, tasks, viz
from attnkit.models import decoding
x = torch.randn(2, 5, 8)
assert ak.MultiHeadAttention(8, 2)(x, causal=True).context.shape == (2, 5, 8)
model = models.build("seq2seq", dict(src_vocab_size=9, tgt_vocab_size=9, max_output_len=3))
decoding.greedy(model.eval(), torch.randint(3, 9, (2, 4)), torch.tensor([4, 2]))
tasks.get("times").generate(5)
print(viz.render_mask(ak.masks.causal(2)))
print(viz.render_weights(torch.eye(2), ["a", "b"], ["年", "x"]))
print(sorted(m for m in sys.modules if m.split(".")[0] in {extras!r}))
"""


def test_core_imports_and_runs_without_the_extras():
    code = BLOCKED + CORE.format(extras=EXTRAS)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("[]")


def test_the_command_without_its_extras_says_what_to_install():
    code = BLOCKED + "from attnkit.cli import main; raise SystemExit(main(['tour']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pip install 'attnkit[all]'" in proc.stderr


def test_the_core_dependency_is_torch_alone_and_extras_are_pinned():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [d.split(">")[0] for d in meta["dependencies"]] == ["torch"]
    pinned = {
        line.split("==")[0].lower()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for extra in ("train", "tasks", "plot", "prices", "eurusd"):
        for dep in meta["optional-dependencies"][extra]:
            assert dep.split(">")[0].lower() in pinned, dep
