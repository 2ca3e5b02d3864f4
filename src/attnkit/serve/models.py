"""The checkpoints an explorer serves, each behind one interface: a model card, and a prediction
with its attention as plain JSON data.

Kinds (from the checkpoint's config.json; loading reads safetensors weights and JSON, never a
pickle):

- ``seq2seq``: the dates / times models, RNN or Transformer. A prediction is the output text and
  its (output rows x input columns) attention; a Transformer adds every layer's and head's
  cross-attention, teacher-forced on its own output.
- ``classifier``: text classifiers. A prediction is the label, the class probabilities and each
  word's attention weight and integrated-gradients attribution (for HAN, per sentence).
- ``captioner``: the Show, Attend and Tell captioner. The input is the index of one of its test
  images; a prediction is the image's pixels, the string written, the truth, and each output
  token's attention over the feature grid.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import torch

from ..train import CheckpointError, read_config

__all__ = ["KINDS", "MAX_BEAM", "MAX_INPUT", "Served", "load_served", "served_name"]

MAX_INPUT = 1000  # characters of one input
MAX_BEAM = 8
KINDS = ("seq2seq", "classifier", "captioner")


def _rounded(t: torch.Tensor, places: int = 5) -> list:
    return torch.round(t.detach().float(), decimals=places).tolist()


def served_name(directory: str | Path, taken: set[str]) -> str:
    """A URL-safe name for a checkpoint directory, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(directory).resolve().name).strip("-") or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


class Served:
    """One loaded checkpoint. ``predict`` is serialised by a lock: torch modules are shared
    between the server's worker threads."""

    def __init__(self, name: str, directory: Path, kind: str, run: Any) -> None:
        self.name, self.directory, self.kind, self.run = name, directory, kind, run
        self.lock = threading.Lock()
        self.test = None  # a captioner's test images, made on first use

    @property
    def is_transformer(self) -> bool:
        model = self.run.model
        return hasattr(model, "encoder") and hasattr(model, "decoder")

    def card(self) -> dict[str, Any]:
        config = self.run.config
        task = dict(config.get("task") or {})
        task.pop("vocab", None)  # a base64 tokenizer model: not for a card
        for key in ("src_vocab", "tgt_vocab"):
            if isinstance(task.get(key), list):
                task[key] = f"{len(task[key])} symbols"
        return {
            "name": self.name, "kind": self.kind, "model": config.get("model"),
            "transformer": self.is_transformer, "config": config.get("config"),
            "task": task, "metrics": config.get("metrics"), "epoch": config.get("epoch"),
            "data": config.get("data"), "version": config.get("attnkit_version"),
            "parameters": sum(p.numel() for p in self.run.model.parameters()),
            "layers": len(self.run.model.decoder) if self.is_transformer else None,
            "heads": self.run.model.cfg.num_heads if self.is_transformer else None,
        }  # fmt: skip

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
            if self.kind == "classifier":
                return self._classify(text)
            if self.kind == "captioner":
                return self._caption(text, beam)
            return self._seq2seq(text, beam)

    def _caption(self, text: str, beam: int) -> dict[str, Any]:
        from ..recipes import caption
        from ..tasks.images import test_index

        if self.test is None:
            self.test = caption.test_data(self.run)
        i = test_index(text, len(self.test), "a captioner")
        image = self.test.captions.x[i]
        ((out, tokens, weights),) = caption.caption(self.run, image, beam=beam)
        return {"kind": "captioner", "input": str(i), "output": out,
                "truth": self.test.captions.strings[i], "image": _rounded(image[0], 4),
                "boxes": self.test.captions.boxes[i], "output_tokens": tokens,
                "weights": _rounded(weights)}  # fmt: skip

    def _classify(self, text: str) -> dict[str, Any]:
        from ..recipes import classify

        if not self.run.task.documents and "\n" in text:
            text = " ".join(text.split())
        with torch.enable_grad():
            explanation = classify.explain(self.run, text)
        return {"kind": "classifier", "input": text, **explanation.to_json()}

    def _seq2seq(self, text: str, beam: int) -> dict[str, Any]:
        from ..recipes import seq2seq

        ((out, weights),) = self.run.task.predict(self.run.model, [text], beam=beam)
        read = list(self.run.task.normalize(text))
        written = seq2seq.output_labels(out, weights)
        result = {"kind": "seq2seq", "input": text, "output": out, "input_tokens": read,
                  "output_tokens": written, "weights": _rounded(weights)}  # fmt: skip
        if self.is_transformer:
            maps = seq2seq.transformer_weights(self.run, text, out)
            layers = [m[0, :, : len(written), : len(read)] for m in maps.cross]
            result["layers"] = [_rounded(m) for m in layers]  # [layer][head][row][col]
        return result


def load_served(directory: str | Path, name: str) -> Served:
    """The checkpoint in ``directory`` as a :class:`Served`; CheckpointError if it holds no
    model the explorer shows."""
    directory = Path(directory)
    config = read_config(directory)
    if config is None:
        raise CheckpointError(f"{directory} holds no checkpoint (no config.json)")
    task = (config.get("task") or {}).get("name")
    if task == "classify":
        from ..recipes import classify

        return Served(name, directory, "classifier", classify.load(directory))
    if task == "caption":
        from ..recipes import caption

        return Served(name, directory, "captioner", caption.load(directory))
    if task in ("lm", "translate", "prices", "vision"):
        raise CheckpointError(f"{directory} holds a {task} model; the explorer shows seq2seq "
                              "(dates, times), classifier and captioner checkpoints")  # fmt: skip
    from ..recipes import seq2seq

    return Served(name, directory, "seq2seq", seq2seq.load(directory))
