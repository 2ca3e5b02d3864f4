"""Argument types that validate where arguments are parsed, and a parser whose errors are one
line (``attnkit train: error: argument --beam: must be an int >= 1, got '0'``), exit code 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (its subcommands inherit this)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _number(kind, text: str, low, high=None, what: str = ""):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value != value or value < low or (high is not None and value > high):  # NaN too
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, 1, what="an int >= 1")


def count(text: str) -> int:
    """An int >= 0 (a seed)."""
    return _number(int, text, 0, what="an int >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    value = _number(float, text, 0.0, float("inf"), what="a finite number > 0")
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1], such as a target exact match (0: stop after the first epoch)."""
    return _number(float, text, 0.0, 1.0, what="a number in [0, 1]")


def path(text: str) -> str:
    """A file or directory name that is not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or directory, got ''")
    return text


# train options that belong to one task each: every other task refuses them
TASK_FLAGS = {"pooling": ("classify",), "block": ("vision", "caption"), "layout": ("caption",),
              "doubly_stochastic": ("caption",), "joined": ("translate",),
              "batch_by": ("translate",)}  # fmt: skip


def flag(name: str) -> str:
    """The command-line spelling of an argument's name: "vocab_size" -> "--vocab-size"."""
    return "--" + name.replace("_", "-")


def given_flag(args: argparse.Namespace, name: str) -> bool:
    """Whether the option ``name`` was given: its value is neither the parser's None nor a
    switch's False, so a zero (``--joined 0``) counts as given."""
    value = getattr(args, name, None)
    return value is not None and value is not False


def refuse_flags(args: argparse.Namespace, names, task: str, what: str | None = None) -> None:
    """UserError listing the flags given among ``names`` and the other tasks' own flags
    (:data:`TASK_FLAGS`): "--n, --pooling do not apply to ``what`` (default ``task``)"."""
    from .errors import UserError

    names = dict.fromkeys([*names, *(n for n, owners in TASK_FLAGS.items() if task not in owners)])
    given = [flag(n) for n in names if given_flag(args, n)]
    if given:
        raise UserError(f"{', '.join(given)} do not apply to {what or task}")


def refuse_task_flags(args: argparse.Namespace) -> None:
    """UserError for a task's own flag (:data:`TASK_FLAGS`) given to another task."""
    from .errors import UserError

    for name, owners in TASK_FLAGS.items():
        if given_flag(args, name):
            raise UserError(f"{flag(name)} applies to {' and '.join(owners)} only")


def name_list(text: str | None, allowed, flag: str, default=None) -> tuple[str, ...]:
    """Comma-separated names, each one of ``allowed``; ``default`` (else all of ``allowed``)
    when ``text`` is not given. UserError naming the unknown ones."""
    from .errors import UserError

    if not text:
        return tuple(allowed if default is None else default)
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise UserError(f"{flag}: unknown {', '.join(unknown) or 'empty list'}; expected some "
                        f"of {','.join(allowed)}")  # fmt: skip
    return names
