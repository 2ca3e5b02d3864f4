"""Language models as two ONNX graphs, and generation over onnxruntime.

A language model generates through its incremental call ``advance(ids, state) -> (logits of
the next token, state)`` (:mod:`attnkit.models.decoder_only`, :mod:`attnkit.models.rnn_lm`),
which leaves Python as two graphs:

- ``prompt.onnx``: ``ids`` int64 (batch, tokens), the prompt -> ``logits`` float32 (batch,
  vocabulary) of the token after it, and the state after it;
- ``step.onnx``: ``ids`` int64 (batch, 1), the last token, and the state -> ``logits`` and
  ``next_<name>`` for every state tensor.

The state's tensors are named by their path (:func:`~attnkit.export.sequences.flatten`):
``state.<block>.key`` / ``.value`` (batch, heads, tokens so far, head size) of the decoder-only
Transformer, ``state.0`` / ``state.1`` (layers, batch, hidden), the LSTM's h and c. The batch,
the prompt's length and the tokens so far stay free. ``model.json`` holds the vocabulary and
the context length. The LSTM's prompt graph comes from torch's TorchScript-based exporter
(one ONNX ``LSTM`` node over a free number of steps; ``torch.export`` unrolls ``nn.LSTM``,
pytorch#126339); the rest from the dynamo exporter.

:class:`OnnxLM` generates over the two graphs with the shared decoding code
(:func:`~attnkit.models.decoding.extend`): greedy or sampled, the PyTorch model's tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..models.decoding import IncrementalLM
from .onnx import META, ExportError, check_graph, export_graph, exporter_for, write_meta
from .sequences import STATE, flatten, open_graphs, state_meta, unflatten

__all__ = ["OnnxLM", "PromptGraph", "StepGraph", "export"]


class PromptGraph(nn.Module):
    """ids (B, T) -> (logits (B, V), the state's tensors)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, ids: Tensor):
        logits, state = self.model.advance(ids, self.model.empty_state())
        return (logits, *(t for _, t in flatten(state, STATE)[0]))


class StepGraph(nn.Module):
    """(ids (B, 1), *state) -> (logits (B, V), *next state)."""

    def __init__(self, model: nn.Module, spec: Any, names: list[str]) -> None:
        super().__init__()
        self.model, self.spec, self.names = model.eval(), spec, names

    def forward(self, ids: Tensor, *state: Tensor):
        given = unflatten(self.spec, dict(zip(self.names, state, strict=True)))
        logits, nxt = self.model.advance(ids, given)
        return (logits, *(t for _, t in flatten(nxt, STATE)[0]))


def _state(model: nn.Module, b: int, t: int, steps: int = 0):
    with torch.no_grad():
        ids = torch.randint(0, model.cfg.vocab_size, (b, t))
        logits, state = model.advance(ids, model.empty_state())
        for _ in range(steps):
            logits, state = model.advance(logits.argmax(-1)[:, None], state)
    return state


def _free_dims(model: nn.Module) -> dict[str, dict[int, str]]:
    """Per state tensor, the axes that follow the batch and the tokens so far, found from
    prompts of two batch sizes and lengths."""
    base = {n: x.shape for n, x in flatten(_state(model, 2, 5), STATE)[0]}
    wider = {n: x.shape for n, x in flatten(_state(model, 3, 5), STATE)[0]}
    longer = {n: x.shape for n, x in flatten(_state(model, 2, 7), STATE)[0]}
    free: dict[str, dict[int, str]] = {}
    for n, shape in base.items():
        free[n] = {}
        for axis, size in enumerate(shape):
            if size != wider[n][axis]:
                free[n][axis] = "batch"
            elif size != longer[n][axis]:
                free[n][axis] = "steps"
    return free


def export(
    run: Any, out: Path, recipe: str = "lm", example: tuple[int, int] = (2, 6)
) -> list[Path]:
    """``out/prompt.onnx``, ``out/step.onnx`` and ``out/model.json`` of a language model;
    the paths written."""
    model = run.model.eval()
    if not hasattr(model, "advance"):
        raise ExportError(f"{type(model).__name__} has no incremental call to export")
    b, t = example
    ids = torch.randint(0, model.cfg.vocab_size, (b, t))
    state = _state(model, b, t, steps=1)  # after a step: no size of 1 taken for a constant
    tensors, spec = flatten(state, STATE)
    names = [n for n, _ in tensors]
    free = _free_dims(model)
    exporter = exporter_for(model)
    out.mkdir(parents=True, exist_ok=True)
    prompt = export_graph(
        PromptGraph(model),
        [ids],
        out / "prompt.onnx",
        input_names=["ids"],
        output_names=["logits", *names],
        dynamic={"ids": {0: "batch", 1: "steps"}, "logits": {0: "batch"}, **free},
        exporter=exporter,
    )
    step = export_graph(
        StepGraph(model, spec, names),
        [ids[:, :1], *(x for _, x in tensors)],
        out / "step.onnx",
        input_names=["ids", *names],
        output_names=["logits", *(f"next_{n}" for n in names)],
        dynamic={"ids": {0: "batch"}, **free},
    )
    write_meta(
        out,
        recipe,
        {"prompt": prompt, "step": step},
        [check_graph(prompt), check_graph(step)],
        kind=type(model).__name__.lower(),
        exporters={"prompt": exporter, "step": "dynamo"},
        **state_meta(names, free),
        generation={"vocab_size": model.cfg.vocab_size, "max_len": model.cfg.max_len},
        inputs={
            "ids": "int64: prompt.onnx (batch, tokens) the prompt; step.onnx (batch, 1) the "
            "last token",
        },
        outputs={
            "logits": "float32 (batch, vocabulary): scores of the next token",
            "<state>": "prompt.onnx: the state after the prompt, under the names of 'state'",
            "next_<state>": "step.onnx: the state after the token, fed to the next step",
        },
        task=run.config["task"],
    )
    return [prompt, step, out / META]


class OnnxLM(IncrementalLM, nn.Module):
    """A language model's ``generate`` (and ``cfg.max_len``) over an exported model's
    ``prompt.onnx`` and ``step.onnx`` in onnxruntime: a module without parameters that goes
    where the model goes (``attnkit.recipes.lm.stream``)."""

    def __init__(self, directory: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.meta, self.cfg, self.names, graphs = open_graphs(
            directory, ("prompt", "step"), "generation", threads
        )
        self.prompt, self.stepper = graphs

    def advance(self, ids: Tensor, state: tuple[Tensor, ...] | None):
        feed: dict[str, np.ndarray] = {"ids": ids.cpu().long().numpy()}
        if state is None:
            outputs = self.prompt.run(["logits", *self.names], feed)
        else:
            if ids.shape[1] != 1:
                raise ExportError("an exported language model's step reads one token")
            feed.update((n, s.numpy()) for n, s in zip(self.names, state, strict=True))
            outputs = self.stepper.run(["logits", *(f"next_{n}" for n in self.names)], feed)
        logits, *nxt = (torch.from_numpy(x) for x in outputs)
        return logits, tuple(nxt)

    def forward(self, *args: Any) -> Any:  # pragma: no cover - generation calls advance
        raise TypeError("OnnxLM generates through generate()")
