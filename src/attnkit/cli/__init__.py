"""The ``attnkit`` command: demo, train, eval, predict, show, generate, translate, explain,
report, repro, serve, summary, tour, bench (the [all] extra)."""

from __future__ import annotations

import argparse
import csv
import sys
import traceback

from .. import __version__
from .arguments import Parser
from .errors import UserError

__all__ = ["UserError", "main"]


# what a user can cause and fix, each said in one line with exit code 2: bad input of any kind
# (ValueError: SettingsError, PricesError, CheckpointError, UnicodeError, ...), a file that
# cannot be read or written (OSError: missing, a directory, no permission, a full disk), a CSV
# the csv module refuses. Anything else is a bug of attnkit's and keeps its traceback.
USER_ERRORS = (UserError, ValueError, OSError, csv.Error)


def _one_line(err: BaseException) -> str:
    """An error's message on one line, control characters escaped (a message may quote user
    input: a file name, a line of a file)."""
    from .._text import printable

    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.strerror:  # "[Errno 28] ..." said as "FILE: why"
        text = f"{err.filename}: {err.strerror}" if err.filename is not None else err.strerror
    return printable(" ".join(text.split()))


def build_parser() -> argparse.ArgumentParser:
    from . import (
        demo,
        eval,
        explain,
        export,
        lm,
        predict,
        prices,
        repro,
        serve,
        show,
        showcase,
        summary,
        train,
        translate,
    )
    from .arguments import count

    parser = Parser(prog="attnkit", description="Attention mechanisms: train, inspect, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in (
        train,
        eval,
        predict,
        show,
        demo,
        lm,
        translate,
        prices,
        repro,
        explain,
        export,
        serve,
        summary,
    ):
        verb.register(sub)
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


def parser_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser of the deepest subcommand ``args`` names (``attnkit train times``)."""
    for dest in ("command", "task", "report", "bench"):
        name = getattr(args, dest, None)
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if name is None or not subs or name not in subs[0].choices:
            continue
        parser = subs[0].choices[name]
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        from .train import with_default_task

        parser = build_parser()
    except ModuleNotFoundError as err:  # installed without the extras the command needs
        hint = "install the command's extras: pip install 'attnkit[all]'"
        print(f"attnkit: {err.name} is missing; {hint}", file=sys.stderr)
        return 2
    argv = with_default_task(list(sys.argv[1:] if argv is None else argv))
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # flags of another task, or of none: said by the subcommand they were given to
            parser_of(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as done:  # --help, or a usage error already printed in one line
        return done.code if isinstance(done.code, int) else 2
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"attnkit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attnkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # not something the user did: the traceback, and where to report it
        traceback.print_exc()
        print(
            f"attnkit {args.command}: internal error (a bug in attnkit {__version__}, not in what "
            f"you gave it): please report it with the command and the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
