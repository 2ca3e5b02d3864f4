"""``attnkit predict``: a checkpoint's predictions, through its recipe's ``predict``."""

from __future__ import annotations

import argparse

from .._text import json_line, printable
from .arguments import path, positive_int, utf8_text
from .errors import UserError
from .verbs import finite, open_checkpoint, open_export


def cmd_predict(args: argparse.Namespace) -> int:
    if args.runtime == "onnx":
        recipe, run, options = open_export(args, "predict")
    elif args.model:
        raise UserError("--model is an exported model: give it with --runtime onnx")
    elif not args.checkpoint:
        raise UserError("give --checkpoint DIR (or --runtime onnx --model DIR)")
    else:
        recipe, run, options = open_checkpoint(args, "predict")
    for prediction in recipe.predict(run, options):
        if args.json:
            print(json_line(finite(prediction.record)))
        else:
            print(printable(prediction.line))
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a checkpoint")
    p.add_argument("--checkpoint", type=path, help="a checkpoint directory (attnkit train)")
    p.add_argument(
        "--runtime",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: run an exported model (--model) in onnxruntime (default: torch)",
    )
    p.add_argument("--model", type=path, help="with --runtime onnx: a directory of attnkit export")
    p.add_argument("text", nargs="*", type=utf8_text)
    p.add_argument(
        "--data",
        type=path,
        help="prices: the bars to predict, a CSV file or series name (default: the checkpoint's)",
    )
    p.add_argument(
        "--last", type=positive_int, help="prices: show the last N bars only (default: 10)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=path, help="write one heatmap PNG per input into this directory")
    p.add_argument("--beam", type=positive_int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_predict)
