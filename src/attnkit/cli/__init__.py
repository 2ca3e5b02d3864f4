"""The ``attnkit`` command: demo, train, eval, predict, show, tour."""

from __future__ import annotations

import argparse
import sys

from .errors import UserError

__all__ = ["UserError", "main"]


def build_parser() -> argparse.ArgumentParser:
    from . import seq2seq, showcase

    parser = argparse.ArgumentParser(
        prog="attnkit", description="Attention mechanisms: train, inspect, benchmark."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    seq2seq.register(sub)
    tour = sub.add_parser("tour", help="a short tour of the attention layers")
    tour.add_argument("--seed", type=int, default=0)
    tour.set_defaults(func=showcase.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..train.checkpoint import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"attnkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attnkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
