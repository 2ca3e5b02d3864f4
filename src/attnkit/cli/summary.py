"""``attnkit summary``: a checkpoint's layers, output shapes, parameter counts and config,
what ``model.summary()`` shows in Keras (through torchinfo)."""

from __future__ import annotations

import dataclasses
import json
from collections import namedtuple
from functools import cache

import torch

from .. import tasks
from ..models import name_of
from ..recipes import seq2seq as recipe
from .arguments import path, positive_int
from .verbs import recipe_of_kind

EXAMPLE = "quarter to six pm"  # used where the checkpoint's task cannot write one


def example_text(run: recipe.Run) -> str:
    """An input the checkpoint's model can read: one its task generates, else one made of its
    vocabulary."""
    name = run.task.to_config()["name"]
    try:
        text = tasks.get(name).generate(1, 0)[0][0]
    except ValueError:  # a task without a generator (a file of pairs)
        text = EXAMPLE
    if run.task.input_problem(text):
        chars = run.task.src_vocab.to_list()
        text = "".join(chars[i % len(chars)] for i in range(min(12, run.task.max_input_len)))
    return text


@cache
def _tuple_type(cls: type) -> type:
    return namedtuple(cls.__name__, [f.name for f in dataclasses.fields(cls)])


def _as_tuple(module, args, output):
    """A layer's dataclass output (AttentionOutput, BlockOutput...) as a named tuple with the
    same fields, which torchinfo can measure and callers read the same way."""
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        values = [getattr(output, f.name) for f in dataclasses.fields(output)]
        return _tuple_type(type(output))(*values)
    return None


def summary_table(run: recipe.Run, text: str, depth: int = 3) -> str:
    """One row per layer (module) down to ``depth``: its name, type, output shape on one
    example (``text`` and its predicted output, teacher-forced; measured by torchinfo, the
    first call of a layer a decoder calls every step) and parameter count; then the totals.
    Layers the example never calls (e.g. an encoder run by a compiled kernel) show no shape."""
    from torchinfo import summary

    ((out, _),) = run.task.predict(run.model, [text])
    target = out or run.task.tgt_vocab.to_list()[0]
    batch = run.task.dataset([(text, target)]).batch(torch.tensor([0]))
    hooks = [m.register_forward_hook(_as_tuple) for m in run.model.modules()]
    try:
        stats = summary(
            run.model, input_data=[batch.src, batch.src_len, batch.tgt], depth=depth, verbose=0
        )
    finally:
        for hook in hooks:
            hook.remove()
    shapes: dict[int, list[int]] = {}
    for info in stats.summary_list:
        shapes.setdefault(id(info.module), info.output_size)
    rows = [("layer", "type", "output shape", "params")]
    for name, module in run.model.named_modules():
        level = name.count(".") + 1 if name else 0
        if level > depth:
            continue
        shape = shapes.get(id(module))
        params = sum(p.numel() for p in module.parameters())
        rows.append(
            (
                "  " * level + (name or "(model)"),
                type(module).__name__,
                str(shape) if shape else "-",
                f"{params:,}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    rule = "-" * len(lines[0])
    total = sum(p.numel() for p in run.model.parameters())
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    size = sum(p.numel() * p.element_size() for p in run.model.parameters())
    return "\n".join(
        [
            lines[0],
            rule,
            *lines[1:],
            rule,
            f"parameters: {total:,} ({trainable:,} trainable), {size / 2**20:.2f} MiB",
        ]
    )


def cmd_summary(args) -> int:
    run = recipe_of_kind(args.checkpoint, recipe.Seq2SeqRecipe, "summary").load(args.checkpoint)
    text = example_text(run)
    print(f"model: {name_of(run.model)}; example input {text!r}\n")
    print(summary_table(run, text, args.depth))
    print("\nconfig:")
    print(json.dumps(run.config["config"], indent=2))
    task = run.task.to_config()
    print(
        f"\ntask: {task['name']}; normalisation {task['normalize'] or 'none'}; "
        f"{len(run.task.src_vocab)} input and {len(run.task.tgt_vocab)} output symbols; "
        f"inputs up to {run.task.max_input_len} characters"
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "summary", help="layers, output shapes, parameters and config of a checkpoint"
    )
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("--depth", type=positive_int, default=3, help="module nesting shown")
    p.set_defaults(func=cmd_summary)
