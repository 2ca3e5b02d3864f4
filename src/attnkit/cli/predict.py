"""``attnkit predict``: a checkpoint's predictions, through its recipe's ``predict``."""

from __future__ import annotations

import argparse

from .._text import json_line, printable
from .arguments import add_runtime, path, positive_int, utf8_text
from .verbs import finite, open_run


def cmd_predict(args: argparse.Namespace) -> int:
    recipe, run, options = open_run(args, "predict")
    for prediction in recipe.predict(run, options):
        if args.json:
            print(json_line(finite(prediction.record)))
        else:
            print(printable(prediction.line))
    return 0


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a checkpoint")
    add_runtime(p, "attnkit train")
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
