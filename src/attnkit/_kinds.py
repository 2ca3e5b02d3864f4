"""Kinds of setting values: each parses a command-line string and checks it, raising
argparse's ArgumentTypeError with what was expected (``must be an int >= 1, got '0'``). The
recipes' settings name them and the command's parsers use them; standard library only, so the
command can start (and say what is missing) without the extras installed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["count", "fraction", "path", "positive_float", "positive_int"]


def _number(
    kind: Callable[[str], Any], text: str, low: Any, high: Any = None, what: str = ""
) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value != value or value < low or (high is not None and value > high):  # NaN too
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 (a kind of setting: parses and checks a flag's value)."""
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
