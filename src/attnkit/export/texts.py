"""A text classifier as an ONNX graph: subword ids in, class probabilities and the pooling's
attention weights out.

Inputs and outputs of ``model.onnx`` (also in ``model.json``):

- ``ids`` int64 (batch, tokens) subword ids padded with ``pad_id``, and ``lengths`` int64
  (batch,) each row's length (>= 1); for a document model (pooling "han") ``ids`` (batch,
  sentences, words) and ``lengths`` (batch, sentences) words per sentence;
- ``probabilities`` float32 (batch, classes), classes named in ``model.json``;
- ``weights`` float32 (batch, tokens), the pooling's weight of every token (rows sum to 1, 0 on
  padding) for attention pooling; (batch, tokens, features) for the softmax gate, a weight per
  feature of every token; for "han" ``word_weights`` (batch, sentences, words) and
  ``sentence_weights`` (batch, sentences); none for mean, max and last.

The batch and the lengths are free. ``model.json`` holds the task: the classes and the
sentencepiece model that turns text into ids. The graph is exported with torch's
TorchScript-based exporter, which writes the bidirectional GRU as one ONNX ``GRU`` node over a
free number of steps (``torch.export`` unrolls it at the example's length, pytorch#126339).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .onnx import META, check_graph, export_graph, exporter_for, write_meta

__all__ = ["TextGraph", "export"]


class TextGraph(nn.Module):
    """(ids, lengths) -> (probabilities, the pooling's weights, if it has any)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        self.documents = model.cfg.pooling == "han"
        with torch.no_grad():  # which weights the pooling gives, from one probe
            ids, lengths = self.example()
            _, weights = model(ids, lengths, return_weights=True)
        if self.documents:
            self.names = ["word_weights", "sentence_weights"]
        else:
            self.names = [] if weights is None else ["weights"]
        # the gate's weights are per feature: (batch, tokens, features)
        self.features = (
            None
            if self.documents or weights is None or weights.dim() == 2
            else (int(weights.shape[-1]))
        )

    def example(self) -> tuple[Tensor, Tensor]:
        vocab = self.model.cfg.vocab_size
        if self.documents:
            return torch.randint(1, vocab, (2, 3, 5)), torch.tensor([[5, 3, 2], [4, 4, 1]])
        return torch.randint(1, vocab, (2, 7)), torch.tensor([7, 4])

    def forward(self, ids: Tensor, lengths: Tensor):
        logits, weights = self.model(ids, lengths, return_weights=True)
        rest = list(weights) if self.documents else [] if weights is None else [weights]
        return (torch.softmax(logits, -1), *rest)


def export(run: Any, out: Path, recipe: str = "classify") -> list[Path]:
    """Write ``out/model.onnx`` and ``out/model.json``; the paths written."""
    graph = TextGraph(run.model)
    names = ["probabilities", *graph.names]
    if graph.documents:
        free = {
            "ids": {0: "batch", 1: "sentences", 2: "words"},
            "lengths": {0: "batch", 1: "sentences"},
            "word_weights": {0: "batch", 1: "sentences", 2: "words"},
            "sentence_weights": {0: "batch", 1: "sentences"},
        }
    else:
        free = {"ids": {0: "batch", 1: "tokens"}, "lengths": {0: "batch"}}
        free["weights"] = {0: "batch", 1: "tokens"}
    free["probabilities"] = {0: "batch"}
    path = export_graph(
        graph,
        list(graph.example()),
        out / "model.onnx",
        input_names=["ids", "lengths"],
        output_names=names,
        dynamic={k: v for k, v in free.items() if k in ("ids", "lengths", *names)},
        exporter=exporter_for(run.model),
    )
    shape = ["batch", "sentences", "words"] if graph.documents else ["batch", "tokens"]
    write_meta(
        out,
        recipe,
        {"model": path},
        [check_graph(path)],
        kind="text-classifier",
        exporters={"model": exporter_for(run.model)},
        inputs={
            "ids": {
                "shape": shape,
                "dtype": "int64",
                "about": "subword ids of the task's sentencepiece model, padded with pad_id",
                "pad_id": run.model.cfg.pad_id,
            },
            "lengths": {"shape": shape[:-1], "dtype": "int64", "about": "ids per row, >= 1"},
        },
        outputs={
            "probabilities": {"dtype": "float32", "classes": list(run.task.classes)},
            **{
                n: {
                    "dtype": "float32",
                    "shape": [free[n][i] for i in sorted(free[n])]
                    + ([graph.features] if graph.features else []),
                }
                for n in graph.names
            },
        },
        task=run.config["task"],
    )
    return [path, out / META]
