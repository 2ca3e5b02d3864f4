"""``attnkit show``: draw where a checkpoint's model looked, as PNG and in the terminal,
through its recipe's ``show``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._text import printable
from ..recipes.seq2seq import KINDS
from .arguments import count, path, positive_int, utf8_text
from .errors import UserError
from .verbs import open_checkpoint


def new_png(name: str) -> Path:
    """Where to write a PNG the user named: ".png" added when there is no suffix; an existing
    directory is refused."""
    out = Path(name)
    if out.is_dir():
        raise UserError(f"{out} is a directory; name a PNG file")
    return out if out.suffix else out.with_suffix(".png")


def cmd_show(args: argparse.Namespace) -> int:
    png = new_png(args.out or "attention.png")
    recipe, run, options = open_checkpoint(args, "show")
    for line in recipe.show(run, options, png):
        print(printable(line))
    return 0


def register(sub) -> None:
    p = sub.add_parser("show", help="draw where the model looked, as PNG and in the terminal")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument(
        "text", type=utf8_text, help="the input; for image models, the index of a test image"
    )
    p.add_argument("--out", type=path, help="PNG path (default attention.png)")
    p.add_argument(
        "--kind", choices=sorted(KINDS), help="Transformer: which attention (default cross)"
    )
    p.add_argument(
        "--layer",
        type=int,
        help="Transformer: the layer whose heads to draw (default -1, the last)",
    )
    p.add_argument(
        "--head", type=count, help="Transformer: the head shown in the terminal (default 0)"
    )
    p.add_argument(
        "--beam", type=positive_int, default=1, help="captioner: beam width (1 = greedy)"
    )
    p.set_defaults(func=cmd_show)
