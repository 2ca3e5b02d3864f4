"""``attnkit explain``: a prediction with its inputs highlighted, through the checkpoint's
recipe's ``explain`` (text classifiers: attention beside integrated gradients)."""

from __future__ import annotations

import argparse

from .arguments import path, positive_int, utf8_text
from .verbs import open_checkpoint


def cmd_explain(args: argparse.Namespace) -> int:
    recipe, run, options = open_checkpoint(args, "explain")
    for line in recipe.explain(run, options):
        print(line)  # built from escaped user text (viz.highlight), with its own colours
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="a classifier's prediction with its words highlighted by "
        "attention weight and by integrated gradients",
    )
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument(
        "text",
        type=utf8_text,
        help="the text to classify ('-': read it from standard input); a "
        "document model cuts it into sentences",
    )
    p.add_argument("--html", type=path, help="also write a self-contained HTML page here")
    p.add_argument("--steps", type=positive_int, help="integrated-gradients steps (default: 32)")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="highlight with terminal colours (default: when writing to a terminal)",
    )
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_explain)
