"""Sequence-to-sequence models as two ONNX graphs, and their decoding over onnxruntime.

A model of the decoding protocol (:mod:`attnkit.models.decoding`: ``start`` encodes a batch
once, ``step`` writes one token) leaves Python as the same two calls:

- ``encoder.onnx``: ``src`` int64 (batch, source) padded input ids and ``src_len`` int64
  (batch,) -> the decoder's state, one output per state field (``model.json`` names them,
  e.g. ``memory`` (batch, source, hidden), ``mask`` bool (batch, source), ``hidden``);
- ``step.onnx``: ``tokens`` int64 (batch,) the previous output ids (the start id first),
  ``t`` int64 () the step number, and the state -> ``logits`` float32 (batch, vocabulary),
  ``weights`` float32 (batch, source) the step's attention over the input (rows sum to 1, 0 on
  padding), and ``next_<field>`` for every state field, to feed to the next step.

The batch and the input length are free. ``model.json`` holds the rest a runtime needs: the
special ids, the step limit, the state's names, and the task with its vocabularies and input
normalisation, so that inputs can be prepared outside Python. An RNN encoder is exported with
torch's TorchScript-based exporter, which keeps its number of steps free (``torch.export``
unrolls ``nn.GRU`` at the example's length, pytorch#126339); every step graph, and an encoder
without a recurrent layer, with the dynamo exporter.

:class:`OnnxDecoder` is the decoding protocol over the two graphs, so greedy decoding and
beam search (:func:`~attnkit.models.decoding.greedy`, ``beam_search``) run on it unchanged
and give the PyTorch model's tokens.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .onnx import FORMAT, META, ExportError, check_graph, export_graph, read_meta, session

__all__ = ["EncoderGraph", "OnnxDecoder", "StepGraph", "export"]


def _fields(state: Any) -> list[str]:
    """The tensor fields of a decoder state (a dataclass), in order; those that are None for
    this model (e.g. the additive score's keys of another attention kind) are left out."""
    if not dataclasses.is_dataclass(state):
        raise ExportError(f"a decoder state of type {type(state).__name__} is not exported")
    names = []
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise ExportError(
                f"the decoder state's {f.name} is a {type(value).__name__}, not a tensor: "
                "this model's state does not fit a graph yet"
            )
        names.append(f.name)
    return names


class EncoderGraph(nn.Module):
    """(src, src_len) -> the state's tensors, in the order of ``names``."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model.eval(), names

    def forward(self, src: Tensor, src_len: Tensor):
        state = self.model.start(src, src_len)
        return tuple(getattr(state, n) for n in self.names)


class StepGraph(nn.Module):
    """(tokens, t, *state) -> (logits, weights, *next state)."""

    def __init__(self, model: nn.Module, state: Any, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model.eval(), names
        self.template = state  # the fields that are not graph inputs keep their values

    def forward(self, tokens: Tensor, t: Tensor, *state: Tensor):
        given = dataclasses.replace(self.template, **dict(zip(self.names, state, strict=True)))
        logits, nxt, weights = self.model.step(tokens, given, t)
        return (logits, weights, *(getattr(nxt, n) for n in self.names))


def _free_dims(model: nn.Module, names: list[str], vocab: int) -> dict[str, dict[int, str]]:
    """Per state field, its free dimensions: the batch (0) and those that follow the input's
    length, found by encoding two batches of different sizes and lengths."""
    shapes = []
    with torch.no_grad():
        for b, s in ((2, 5), (3, 7)):
            src = torch.randint(3, vocab, (b, s)) if vocab > 3 else torch.zeros(b, s).long()
            state = model.start(src, torch.full((b,), s))
            shapes.append({n: tuple(getattr(state, n).shape) for n in names})
    free: dict[str, dict[int, str]] = {}
    for n in names:
        a, b = shapes[0][n], shapes[1][n]
        free[n] = {}
        for axis, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                free[n][axis] = "batch" if (x, y) == (2, 3) and axis == 0 else "source"
    return free


def export(run: Any, out: Path, recipe: str, example: tuple[int, int] = (2, 6)) -> list[Path]:
    """``out/encoder.onnx``, ``out/step.onnx`` and ``out/model.json`` of ``run.model`` (a
    decoding-protocol model with a dataclass state of tensors) and ``run.config["task"]``;
    the paths written."""
    model = run.model.eval()
    cfg = model.cfg
    vocab = getattr(cfg, "src_vocab_size", 4)
    b, s = example
    src = torch.randint(3, max(vocab, 4), (b, s)) if vocab > 3 else torch.zeros(b, s).long()
    src_len = torch.tensor([s] + [max(1, s - 2)] * (b - 1))
    with torch.no_grad():
        state = model.start(src, src_len)
    names = _fields(state)
    free = _free_dims(model, names, vocab)
    recurrent = any(isinstance(m, nn.RNNBase) for m in model.modules())
    out.mkdir(parents=True, exist_ok=True)
    enc = export_graph(
        EncoderGraph(model, names),
        [src, src_len],
        out / "encoder.onnx",
        input_names=["src", "src_len"],
        output_names=names,
        dynamic={"src": {0: "batch", 1: "source"}, "src_len": {0: "batch"}, **free},
        exporter="torchscript" if recurrent else "dynamo",
    )
    tokens = torch.full((b,), cfg.bos_id, dtype=torch.long)
    t = torch.tensor(1)
    step_inputs = ["tokens", "t", *names]
    step = export_graph(
        StepGraph(model, state, names),
        [tokens, t, *(getattr(state, n) for n in names)],
        out / "step.onnx",
        input_names=step_inputs,
        output_names=["logits", "weights", *(f"next_{n}" for n in names)],
        dynamic={"tokens": {0: "batch"}, **free},
    )
    checked = {name: check_graph(path) for name, path in (("encoder", enc), ("step", step))}
    meta = {
        "format": FORMAT,
        "kind": type(model).__name__.lower(),
        "recipe": recipe,
        "graphs": {"encoder": enc.name, "step": step.name},
        "opset": max(c["opset"] for c in checked.values()),
        "exporters": {"encoder": "torchscript" if recurrent else "dynamo", "step": "dynamo"},
        "state": names,
        "state_free_dims": {n: {str(k): v for k, v in d.items()} for n, d in free.items()},
        "decoding": {
            "bos_id": cfg.bos_id,
            "eos_id": cfg.eos_id,
            "pad_id": cfg.pad_id,
            "max_output_len": cfg.max_output_len,
        },
        "inputs": {
            "src": "int64 (batch, source): input ids, padded with pad_id after each row's end",
            "src_len": "int64 (batch,): each row's length, >= 1",
            "tokens": "int64 (batch,): the previous output ids, bos_id at step 0",
            "t": "int64 (): the step number, from 0",
        },
        "outputs": {
            "logits": "float32 (batch, vocabulary): scores of the next output id",
            "weights": "float32 (batch, source): the step's attention over the input",
            "next_*": "the state after the step, fed to the next step under its own name",
        },
        "task": run.config["task"],
        "operators": sorted({op for c in checked.values() for op in c["operators"]}),
    }
    (out / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return [enc, step, out / META]


class OnnxDecoder(nn.Module):
    """The decoding protocol (``cfg``, ``start``, ``step``) over an exported model's
    ``encoder.onnx`` and ``step.onnx`` in onnxruntime (CPU, ``threads`` threads). A module
    without parameters, so it goes where a model goes (``decoding.greedy``, a task's
    ``decode_many``)."""

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        super().__init__()
        directory = Path(directory)
        self.meta = meta = read_meta(directory)
        if "step" not in meta.get("graphs", {}):
            raise ExportError(f"{directory} is not an encoder-decoder export")
        try:
            self.cfg = SimpleNamespace(**meta["decoding"])
            self.names = list(meta["state"])
        except (KeyError, TypeError) as err:
            raise ExportError(f"{directory}/{META} lacks {err}") from None
        threads = threads or torch.get_num_threads()
        self.encoder = session(directory / meta["graphs"]["encoder"], threads)
        self.stepper = session(directory / meta["graphs"]["step"], threads)
        self.step_inputs = {i.name for i in self.stepper.get_inputs()}

    def start(self, src: Tensor, src_len: Tensor | None) -> tuple[Tensor, ...]:
        if src_len is None:
            src_len = torch.full((src.shape[0],), src.shape[1])
        feed = {"src": src.cpu().numpy(), "src_len": src_len.cpu().long().numpy()}
        return tuple(torch.from_numpy(x) for x in self.encoder.run(self.names, feed))

    def step(self, tokens: Tensor, state: tuple[Tensor, ...], t: int):
        feed: dict[str, np.ndarray] = {"tokens": tokens.cpu().long().numpy()}
        feed.update((n, s.numpy()) for n, s in zip(self.names, state, strict=True))
        if "t" in self.step_inputs:  # a graph whose step never reads t has no such input
            feed["t"] = np.array(t, dtype=np.int64)
        outputs = ["logits", "weights", *(f"next_{n}" for n in self.names)]
        logits, weights, *nxt = self.stepper.run(outputs, feed)
        return (
            torch.from_numpy(logits),
            tuple(torch.from_numpy(x) for x in nxt),
            torch.from_numpy(weights),
        )

    def forward(self, *args: Any) -> Any:  # pragma: no cover - decoding calls start / step
        raise TypeError("OnnxDecoder decodes through start() and step()")
