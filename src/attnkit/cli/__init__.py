"""The ``attnkit`` command: demo, train, eval, predict, show, generate, translate, explain,
report, repro, serve, summary, tour, bench (the [all] extra)."""

from __future__ import annotations

import argparse
import sys

from .arguments import Parser
from .errors import UserError

__all__ = ["UserError", "main"]


def build_parser() -> argparse.ArgumentParser:
    from . import classify, lm, prices, repro, seq2seq, serve, showcase, summary, translate
    from .arguments import count

    parser = Parser(prog="attnkit", description="Attention mechanisms: train, inspect, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    seq2seq.register(sub)
    lm.register(sub)
    translate.register(sub)
    prices.register(sub)
    repro.register(sub)
    classify.register(sub)
    serve.register(sub)
    summary.register(sub)
    tour = sub.add_parser("tour", help="a short tour of the attention layers")
    tour.add_argument("--seed", type=count, default=0)
    tour.set_defaults(func=showcase.run)
    bench = sub.add_parser("bench", help="benchmarks")
    what = bench.add_subparsers(dest="bench", required=True)
    attention = what.add_parser(
        "attention", help="time and peak memory of every kernel against torch SDPA and naive"
    )
    from ..bench import attention as bench_attention

    bench_attention.add_arguments(attention)
    attention.set_defaults(func=bench_attention.main_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        from ..train.checkpoint import CheckpointError

        parser = build_parser()
    except ModuleNotFoundError as err:  # installed without the extras the command needs
        hint = "install the command's extras: pip install 'attnkit[all]'"
        print(f"attnkit: {err.name} is missing; {hint}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
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
