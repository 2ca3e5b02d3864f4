"""Encoder-decoders as two ONNX graphs, and their decoding over onnxruntime.

A model of the decoding protocol (:mod:`attnkit.models.decoding`: ``start`` encodes a batch
once, ``step`` writes one token) leaves Python as two calls:

- ``encoder.onnx``: ``src`` int64 (batch, source) padded input ids and ``src_len`` int64
  (batch,) (for the captioner ``src`` float32 images (batch, channels, height, width) of its
  task's size, and no lengths) -> ``logits`` and ``weights`` of step 0 (from the start
  token) and the decoder state after it, one output per tensor of the state;
- ``step.onnx``: ``tokens`` int64 (batch,) the previous output ids, ``t`` int64 () the step
  number (a graph whose model never reads it has no such input), and the state ->
  ``logits`` float32 (batch, vocabulary), ``weights`` float32 (batch, source) the step's
  attention over the input (rows sum to 1, 0 on padding; the captioner's (batch, rows,
  columns) over the image's cells), and ``next_<name>`` for every state tensor, to feed to
  the next step.

The state's tensors are named by their path in the model's state (:func:`flatten`):
``state.memory`` and ``state.hidden`` of the RNN; ``state.caches.<layer>.self_attn.key`` /
``.value`` (batch, heads, steps, head size), which grow by one step per call, and
``.cross_attn.key`` / ``.value`` (batch, heads, source, head size) of the Transformer. Step 0
is taken by the encoder graph because a Transformer's caches are empty before it.

The batch, the input length and the steps stay free (checked on the written graphs).
``model.json`` holds the rest a runtime needs: the special ids, the step limit, the state's
names and free dimensions, and the task with its vocabularies and input normalisation, so that
inputs can be prepared outside Python. An RNN encoder is exported with torch's TorchScript-based
exporter, which keeps its number of steps free (``torch.export`` unrolls ``nn.GRU`` at the
example's length, pytorch#126339); every step graph, and the Transformer's encoder, with the
dynamo exporter.

:class:`OnnxDecoder` is the decoding protocol over the two graphs, so greedy decoding and
beam search (:func:`~attnkit.models.decoding.greedy`, ``beam_search``) run on it unchanged
and give the PyTorch model's tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .onnx import (
    META,
    ExportError,
    check_graph,
    export_graph,
    exporter_for,
    read_meta,
    session,
    write_meta,
)

__all__ = [
    "EncoderGraph",
    "OnnxDecoder",
    "StepGraph",
    "export",
    "flatten",
    "open_graphs",
    "unflatten",
]


STATE = "state"  # the prefix of the state's names in the graphs: state.memory, ...


def flatten(state: Any, prefix: str = "") -> tuple[list[tuple[str, Tensor]], Any]:
    """A decoder state's tensors, each named by its path (``memory``, ``caches.0.self_attn.key``),
    and the spec that :func:`unflatten` rebuilds the state from. A state is tensors, None,
    dataclasses, lists and tuples of them; anything else (a flag, a grid size) is kept as a
    constant of the graph."""
    if isinstance(state, Tensor):
        return [(prefix, state)], ("tensor", prefix)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        tensors, specs = [], []
        for f in dataclasses.fields(state):
            t, spec = flatten(getattr(state, f.name), f"{prefix}.{f.name}".lstrip("."))
            tensors += t
            specs.append((f.name, f.init, spec))
        return tensors, ("dataclass", type(state), specs)
    if isinstance(state, list | tuple):
        tensors, specs = [], []
        for i, item in enumerate(state):
            t, spec = flatten(item, f"{prefix}.{i}".lstrip("."))
            tensors += t
            specs.append(spec)
        return tensors, ("sequence", type(state), specs)
    return [], ("const", state)


def unflatten(spec: Any, tensors: dict[str, Tensor]) -> Any:
    """The state that :func:`flatten` gave ``spec`` for, with ``tensors`` by name."""
    kind = spec[0]
    if kind == "tensor":
        return tensors[spec[1]]
    if kind == "const":
        return spec[1]
    if kind == "sequence":
        return spec[1](unflatten(s, tensors) for s in spec[2])
    cls, fields = spec[1], spec[2]
    obj = cls(**{name: unflatten(s, tensors) for name, init, s in fields if init})
    for name, init, s in fields:
        if not init:
            object.__setattr__(obj, name, unflatten(s, tensors))
    return obj


def _names(tensors: list[tuple[str, Tensor]]) -> list[str]:
    return [n for n, _ in tensors]


def _starts(src: Tensor, bos: int) -> Tensor:
    """The start token for every row of a batch of inputs (ids, or images)."""
    return torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)


Inputs = Callable[[int, int], tuple[Tensor, Tensor]]  # (batch, length) -> (src, src_len)


def id_inputs(vocab: int) -> Inputs:
    """Random input ids (B, S) of a vocabulary of ``vocab`` (specials 0-2 left out) and
    their lengths, the first row full."""

    def make(b: int, s: int) -> tuple[Tensor, Tensor]:
        src = torch.randint(3, vocab, (b, s)) if vocab > 3 else torch.zeros(b, s).long()
        return src, torch.tensor([s] + [max(1, s - 2)] * (b - 1))

    return make


class EncoderGraph(nn.Module):
    """(src, src_len) -> (the first step's logits and weights, the state after it): the
    encoding and the step from the start token, after which the state has every tensor it
    keeps (a Transformer's caches are empty before it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, src: Tensor, src_len: Tensor):
        state = self.model.start(src, src_len)
        tokens = _starts(src, self.model.cfg.bos_id)
        logits, state, weights = self.model.step(tokens, state, 0)
        return (logits, weights, *(t for _, t in flatten(state, STATE)[0]))


class StepGraph(nn.Module):
    """(tokens, t, *state) -> (logits, weights, *next state)."""

    def __init__(self, model: nn.Module, spec: Any, names: list[str]) -> None:
        super().__init__()
        self.model, self.spec, self.names = model.eval(), spec, names

    def forward(self, tokens: Tensor, t: Tensor, *state: Tensor):
        given = unflatten(self.spec, dict(zip(self.names, state, strict=True)))
        logits, nxt, weights = self.model.step(tokens, given, t)
        tensors, _ = flatten(nxt, STATE)
        if _names(tensors) != self.names:
            raise ExportError("the decoder state changes its structure from step to step")
        return (logits, weights, *(x for _, x in tensors))


def _states(model: nn.Module, src: Tensor, src_len: Tensor, steps: int) -> list[Any]:
    """The decoder states after steps 1..``steps`` (greedy) of one batch."""
    out = []
    with torch.no_grad():
        state = model.start(src, src_len)
        tokens = _starts(src, model.cfg.bos_id)
        for t in range(steps):
            logits, state, _ = model.step(tokens, state, t)
            tokens = logits.argmax(-1)
            out.append(state)
    return out


def _free_dims(model: nn.Module, inputs: Inputs) -> dict[str, dict[int, str]]:
    """Per state tensor, its free dimensions: the batch (0), those that follow the input's
    length ("source") and those that grow by a step each step ("steps"), found by decoding
    batches of different sizes and lengths for a few steps."""
    shapes = {}
    for b, s in ((2, 5), (3, 7)):
        src, src_len = inputs(b, s)
        for k, state in enumerate(_states(model, src, src_len, 3)):
            shapes[b, k] = {n: tuple(x.shape) for n, x in flatten(state, STATE)[0]}
    free: dict[str, dict[int, str]] = {}
    for n, first in shapes[2, 1].items():
        free[n] = {}
        for axis, size in enumerate(first):
            if size != shapes[2, 2][n][axis]:
                free[n][axis] = "steps"
            elif size != shapes[3, 1][n][axis]:
                free[n][axis] = "batch" if axis == 0 else "source"
    return free


def export(
    run: Any,
    out: Path,
    recipe: str,
    inputs: Inputs | None = None,
    src_free: dict[int, str] | None = None,
) -> list[Path]:
    """``out/encoder.onnx``, ``out/step.onnx`` and ``out/model.json`` of ``run.model`` (a
    decoding-protocol model) and ``run.config["task"]``; the paths written. ``inputs`` makes
    example inputs (default: ids of the model's source vocabulary) and ``src_free`` names the
    free axes of ``src`` (default: batch and source length)."""
    model = run.model.eval()
    cfg = model.cfg
    inputs = inputs or id_inputs(max(getattr(cfg, "src_vocab_size", 4), 4))
    src_free = {0: "batch", 1: "source"} if src_free is None else src_free
    src, src_len = inputs(2, 6)
    # the step is exported from the state after two steps: a dimension of size 1 would be
    # taken for a constant one
    first, second = _states(model, src, src_len, 2)
    tensors, spec = flatten(second, STATE)
    names = _names(tensors)
    if _names(flatten(first, STATE)[0]) != names:
        raise ExportError(f"the decoder state of {type(model).__name__} changes its structure")
    free = _free_dims(model, inputs)
    exporter = exporter_for(model)
    out.mkdir(parents=True, exist_ok=True)
    step_names = ["logits", "weights"]
    enc = export_graph(
        EncoderGraph(model),
        [src, src_len],
        out / "encoder.onnx",
        input_names=["src", "src_len"],
        output_names=[*step_names, *names],
        dynamic={
            "src": src_free,
            "src_len": {0: "batch"},
            "logits": {0: "batch"},
            "weights": {0: "batch", 1: "source"},
            **{n: {a: d for a, d in f.items() if d != "steps"} for n, f in free.items()},
        },
        exporter=exporter,
    )
    step = export_graph(  # traced on the state after two steps; the tokens' values do not matter
        StepGraph(model, spec, names),
        [_starts(src, cfg.bos_id), torch.tensor(2), *(x for _, x in tensors)],
        out / "step.onnx",
        input_names=["tokens", "t", *names],
        output_names=[*step_names, *(f"next_{n}" for n in names)],
        dynamic={"tokens": {0: "batch"}, **free},
    )
    write_meta(
        out,
        recipe,
        {"encoder": enc, "step": step},
        [check_graph(enc), check_graph(step)],
        kind=type(model).__name__.lower(),
        exporters={"encoder": exporter, "step": "dynamo"},
        **state_meta(names, free),
        decoding={
            "bos_id": cfg.bos_id,
            "eos_id": cfg.eos_id,
            "pad_id": cfg.pad_id,
            "max_output_len": cfg.max_output_len,
        },
        inputs={
            "src": "int64 (batch, source): input ids, padded with pad_id after each row's end",
            "src_len": "int64 (batch,): each row's length, >= 1",
            "tokens": "int64 (batch,): step.onnx: the previous output ids (step 1 on)",
            "t": "int64 (): step.onnx: the step number (1 for the first step it takes)",
        },
        outputs={
            "logits": "float32 (batch, vocabulary): scores of the next output id",
            "weights": "float32 (batch, source): the step's attention over the input",
            "<state>": "encoder.onnx: the state after step 0 (the start token), under the names "
            "of 'state'",
            "next_<state>": "step.onnx: the state after the step, fed to the next one under "
            "its own name",
        },
        task=run.config["task"],
    )
    return [enc, step, out / META]


def state_meta(names: list[str], free: dict[str, dict[int, str]]) -> dict[str, Any]:
    """model.json's description of a decoder state: its tensors' names, in the graphs'
    order, and each one's free axes."""
    return {
        "state": names,
        "state_free_dims": {n: {str(k): v for k, v in d.items()} for n, d in free.items()},
    }


def open_graphs(
    directory: str | Path, graphs: tuple[str, str], settings: str, threads: int | None = None
) -> tuple[dict[str, Any], SimpleNamespace, list[str], list[Any]]:
    """(model.json, its ``settings`` section as attributes, the state's names, an
    onnxruntime session per graph of ``graphs``) of the export in ``directory``; ExportError
    (one line) where it is not an export of that kind."""
    directory = Path(directory)
    meta = read_meta(directory)
    if not set(graphs) <= set(meta.get("graphs", {})):
        raise ExportError(f"{directory} is not an export with {' and '.join(graphs)} graphs")
    try:
        cfg = SimpleNamespace(**meta[settings])
        names = list(meta["state"])
    except (KeyError, TypeError) as err:
        raise ExportError(f"{directory}/{META} lacks {err}") from None
    threads = threads or torch.get_num_threads()
    return meta, cfg, names, [session(directory / meta["graphs"][g], threads) for g in graphs]


class OnnxDecoder(nn.Module):
    """The decoding protocol (``cfg``, ``start``, ``step``) over an exported model's
    ``encoder.onnx`` and ``step.onnx`` in onnxruntime (CPU, ``threads`` threads). A module
    without parameters, so it goes where a model goes (``decoding.greedy``, a task's
    ``decode_many``)."""

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.meta, self.cfg, self.names, graphs = open_graphs(
            directory, ("encoder", "step"), "decoding", threads
        )
        self.encoder, self.stepper = graphs
        self.encoder_inputs = {i.name for i in self.encoder.get_inputs()}
        self.step_inputs = {i.name for i in self.stepper.get_inputs()}

    def start(self, src: Tensor, src_len: Tensor | None) -> tuple[Tensor, ...]:
        """The state after step 0, with that step's logits and weights at its end (the
        encoder graph takes step 0: batch-first like the rest, they follow a beam's rows)."""
        if src_len is None:
            src_len = torch.full((src.shape[0],), src.shape[1])
        feed = {"src": src.cpu().numpy(), "src_len": src_len.cpu().long().numpy()}
        feed = {k: v for k, v in feed.items() if k in self.encoder_inputs}  # images: no lengths
        outputs = self.encoder.run(["logits", "weights", *self.names], feed)
        logits, weights, *state = (torch.from_numpy(x) for x in outputs)
        return (*state, logits, weights)

    def step(self, tokens: Tensor, state: tuple[Tensor, ...], t: int):
        if t == 0:  # taken by the encoder graph, from the start token
            if not bool((tokens == self.cfg.bos_id).all()):
                raise ExportError("an exported decoder's step 0 reads the start token only")
            *rest, logits, weights = state
            return logits, tuple(rest), weights
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
