"""What the verbs on a checkpoint share: find its recipe (``recipe_for``), refuse what does
not apply to it in one line, load it."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import torch

from ..recipes import base


def options_of(args: argparse.Namespace) -> base.Options:
    """The verb's options from parsed arguments (those a verb lacks keep their defaults)."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(base.Options)
        if hasattr(args, f.name)
    }
    if hasattr(args, "text"):
        text = args.text
        values["texts"] = list(text) if isinstance(text, list) else [text]
    return base.Options(**values)


def open_checkpoint(args: argparse.Namespace, verb: str) -> tuple[base.Recipe, Any, base.Options]:
    """(recipe, loaded run, options) of ``args.checkpoint`` for ``verb``; NotApplicable when
    the verb, or one of the options given, does not apply to the checkpoint's recipe."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    recipe = base.recipe_for(args.checkpoint)
    if not recipe.implements(verb):
        raise recipe.refuse(verb)
    options = options_of(args)
    recipe.check_options(verb, options)
    return recipe, recipe.load(args.checkpoint), options


def open_export(args: argparse.Namespace, verb: str) -> tuple[base.Recipe, Any, base.Options]:
    """(recipe, run, options) of the exported model ``args.model`` (``--runtime onnx``):
    its graphs in onnxruntime where the torch model would be."""
    from pathlib import Path

    from .errors import UserError

    if getattr(args, "checkpoint", None):
        raise UserError(
            "--runtime onnx reads --model DIR (made by attnkit export), not --checkpoint"
        )
    if not getattr(args, "model", None):
        raise UserError("--runtime onnx needs --model DIR, a directory made by attnkit export")
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    recipe, meta = base.recipe_for_export(args.model)
    options = options_of(args)
    recipe.check_options(verb, options)
    return recipe, recipe.load_exported(Path(args.model), meta), options


def open_run(
    args: argparse.Namespace, verb: str, kind: type[base.Recipe] | None = None
) -> tuple[base.Recipe, Any, Any]:
    """(recipe, run, options) of ``--runtime onnx --model DIR`` (:func:`open_export`) or of
    ``--checkpoint DIR`` (:func:`open_checkpoint`). With ``kind``, ``verb`` is a command that
    only that kind of recipe takes (``generate``, ``translate``): another is refused, and the
    checkpoint is loaded without the verb's options (the command reads its own)."""
    from .errors import UserError

    if args.runtime == "onnx":
        recipe, run, options = open_export(args, verb)
        if kind is not None and not isinstance(recipe, kind):
            raise recipe.refuse(verb)
        return recipe, run, options
    if args.model:
        raise UserError("--model is an exported model: give it with --runtime onnx")
    if not args.checkpoint:
        raise UserError("give --checkpoint DIR (or --runtime onnx --model DIR)")
    if kind is None:
        return open_checkpoint(args, verb)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    recipe = recipe_of_kind(args.checkpoint, kind, verb)
    return recipe, recipe.load(args.checkpoint), None


def recipe_of_kind(checkpoint: str, kind: type[base.Recipe], verb: str) -> base.Recipe:
    """The recipe of ``checkpoint`` for a command that only one kind of recipe takes
    (``generate``: language models); NotApplicable naming the verbs it does take."""
    recipe = base.recipe_for(checkpoint)
    if not isinstance(recipe, kind):
        raise recipe.refuse(verb)
    return recipe


def finite(value: Any) -> Any:
    """``value`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
