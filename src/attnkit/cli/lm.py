"""``attnkit generate``: continue a prompt with a trained language model (``recipes.lm``)."""

from __future__ import annotations

import argparse
import math

from .._text import printable
from ..recipes import lm as recipe
from ..tasks import UnknownCharactersError
from .arguments import add_runtime, count, positive_int, utf8_text
from .errors import UserError
from .verbs import open_run


def cmd_generate(args: argparse.Namespace) -> int:
    _, run, _ = open_run(args, "generate", recipe.LMRecipe)
    try:
        pieces = recipe.stream(
            run,
            args.prompt,
            args.length,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
        )
        first = next(pieces)  # the prompt's problems are found before anything is printed
    except UnknownCharactersError as err:
        raise UserError(str(err)) from None
    print(printable(args.prompt + first), end="", flush=True)
    for piece in pieces:  # as it is generated: a long continuation shows as it grows
        print(printable(piece), end="", flush=True)
    print()
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="continue a prompt with a trained language model")
    add_runtime(p, "attnkit train lm")
    p.add_argument("prompt", type=utf8_text)
    p.add_argument(
        "--length",
        type=positive_int,
        default=300,
        help=f"characters to add (at most {recipe.MAX_GENERATE:,})",
    )
    p.add_argument(
        "--temperature",
        type=_temperature,
        default=0.8,
        help="0 = greedy; higher is more varied (default 0.8)",
    )
    p.add_argument("--top-k", type=positive_int, help="sample from the k most likely only")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_generate)


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0 (0 = greedy), got {text!r}")
    return value
