"""``attnkit eval``: a checkpoint's scores, through its recipe's ``evaluate``."""

from __future__ import annotations

import argparse

from .._text import json_line
from .arguments import path, positive_int
from .verbs import finite, open_checkpoint


def cmd_eval(args: argparse.Namespace) -> int:
    recipe, run, options = open_checkpoint(args, "eval")
    scores = recipe.evaluate(run, options)
    if args.json:
        print(json_line(finite(scores)))
    else:
        print(recipe.format_scores(scores, options))
    return 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument(
        "--data",
        type=path,
        help="what to score instead of the run's held-out "
        "split: pairs (TSV, CSV or JSON), a text file (lm), a CSV of bars or a "
        "series name (prices), a CSV of labelled texts (classify)",
    )
    p.add_argument("--beam", type=positive_int, default=1, help="translation: beam width")
    p.add_argument(
        "--save",
        type=path,
        help="translation: write source.txt, reference.txt and "
        "hypothesis.txt (one verse per line) into this directory",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_eval)
