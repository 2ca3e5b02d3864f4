"""Argument types that validate where arguments are parsed, and a parser whose errors are one
line (``attnkit train: error: argument --beam: must be an int >= 1, got '0'``), exit code 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from .._kinds import count, fraction, path, positive_float, positive_int

__all__ = [
    "Parser",
    "count",
    "fraction",
    "name_list",
    "path",
    "positive_float",
    "positive_int",
]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (its subcommands inherit this) and no
    abbreviated flags (``--n`` must not be taken for ``--nproc``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):  # a flag of another task, or none at all
            flags = [a for a in message[len(prefix) :].split() if a.startswith("-")]
            listed = ", ".join(flags) or message[len(prefix) :]
            verb = "does" if len(flags) == 1 else "do"
            what = self.prog.removeprefix("attnkit ")
            message = f"{listed} {verb} not apply to {what} (see {self.prog} --help)"
        from .._text import printable

        print(f"{self.prog}: error: {printable(message)}", file=sys.stderr)
        sys.exit(2)


def name_list(text: str | None, allowed, flag: str, default=None) -> tuple[str, ...]:
    """Comma-separated names, each one of ``allowed``; ``default`` (else all of ``allowed``)
    when ``text`` is not given. UserError naming the unknown ones."""
    from .errors import UserError

    if not text:
        return tuple(allowed if default is None else default)
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise UserError(
            f"{flag}: unknown {', '.join(unknown) or 'empty list'}; expected some "
            f"of {','.join(allowed)}"
        )
    return names


def utf8_text(value: str) -> str:
    """A text argument (an input to a model): refused when the shell passed bytes that are not
    UTF-8, which Python keeps as lone surrogates that no tokenizer can read."""
    bad = next((i for i, c in enumerate(value) if "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        byte = ord(value[bad]) - 0xDC00
        raise argparse.ArgumentTypeError(
            f"is not UTF-8 text (byte 0x{byte:02x} at character {bad + 1}); give the input in UTF-8"
        )
    return value


def add_runtime(p: argparse.ArgumentParser, what: str) -> None:
    """``--checkpoint`` (for ``what``), and ``--runtime`` / ``--model``: the exported graphs of
    ``attnkit export`` run in onnxruntime instead (``cli.verbs.open_run``)."""
    p.add_argument("--checkpoint", type=path, help=f"a checkpoint directory ({what})")
    p.add_argument(
        "--runtime",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: run an exported model (--model) in onnxruntime (default: torch)",
    )
    p.add_argument("--model", type=path, help="with --runtime onnx: a directory of attnkit export")
