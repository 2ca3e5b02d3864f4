"""The checkpoints an explorer serves, each behind one interface: a model card, and a prediction
with its attention as plain JSON data, both given by the checkpoint's recipe
(``Recipe.serve_card`` and ``Recipe.serve_predict``, :mod:`attnkit.recipes.base`); loading reads
safetensors weights and JSON, never a pickle. The built-in kinds:

- ``seq2seq``: the dates / times models, RNN or Transformer. A prediction is the output text and
  its (output rows x input columns) attention; a Transformer adds every layer's and head's
  cross-attention, teacher-forced on its own output.
- ``classifier``: text classifiers. A prediction is the label, the class probabilities and each
  word's attention weight and integrated-gradients attribution (for HAN, per sentence).
- ``captioner``: the Show, Attend and Tell captioner. The input is the index of one of its test
  images; a prediction is the image's pixels, the string written, the truth, and each output
  token's attention over the feature grid.
- ``image-classifier``: the CNNs with SE or CBAM blocks. The input is the index of a test image;
  a prediction is its pixels, the label, the truth, the class probabilities and each stage's
  spatial map and channel weights.
- ``prices``: price-series models. The input is the index of a window of the checkpoint's test
  split; a prediction is the window's times and closes, the predicted class (or return), the
  truth, the position taken and, for the attention model, the last bar's weights over the
  window's bars per head.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import torch

from ..recipes.base import Recipe, get, names, recipe_for
from ..train import CheckpointError

__all__ = ["MAX_BEAM", "MAX_INPUT", "Served", "load_served", "served_name"]

MAX_INPUT = 1000  # characters of one input
MAX_BEAM = 8


def served_name(directory: str | Path, taken: set[str]) -> str:
    """A URL-safe name for a checkpoint directory, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(directory).resolve().name).strip("-") or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


class Served:
    """One loaded checkpoint and its recipe. ``predict`` is serialised by a lock: torch modules
    are shared between the server's worker threads."""

    def __init__(self, name: str, directory: Path, recipe: Recipe, run: Any) -> None:
        self.name, self.directory, self.recipe, self.run = name, directory, recipe, run
        self.lock = threading.Lock()
        self._card = recipe.serve_card(run)
        self.kind = self._card.get("kind", recipe.name)

    @property
    def is_transformer(self) -> bool:
        return bool(self._card.get("transformer"))

    def card(self) -> dict[str, Any]:
        task = dict(self.run.config.get("task") or {})
        task.pop("vocab", None)  # a base64 tokenizer model: not for a card
        for key in ("src_vocab", "tgt_vocab"):
            if isinstance(task.get(key), list):
                task[key] = f"{len(task[key])} symbols"
        return {
            "name": self.name,
            "task": task,
            "layers": None,
            "heads": None,
            **self._card,
            "kind": self.kind,
        }

    def predict(self, text: str, beam: int = 1) -> dict[str, Any]:
        """The prediction for ``text`` with its attention; ValueError for input the model
        cannot read."""
        if not text.strip():
            raise ValueError("the input is empty")
        if len(text) > MAX_INPUT:
            raise ValueError(f"the input is {len(text)} characters; at most {MAX_INPUT}")
        if not 1 <= beam <= MAX_BEAM:
            raise ValueError(f"beam must be in 1..{MAX_BEAM}")
        with self.lock, torch.no_grad():
            return self.recipe.serve_predict(self.run, text, beam)


def load_served(directory: str | Path, name: str) -> Served:
    """The checkpoint in ``directory`` as a :class:`Served`; CheckpointError if it holds no
    model the explorer shows."""
    directory = Path(directory)
    recipe = recipe_for(directory)
    if not recipe.serves():
        shown = ", ".join(n for n in names() if get(n).serves())
        raise CheckpointError(
            f"{directory} holds {recipe.what}; the explorer shows the checkpoints of {shown}"
        )
    return Served(name, directory, recipe, recipe.load(directory))
