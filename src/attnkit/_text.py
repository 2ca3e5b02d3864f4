"""User text on a terminal: control characters escaped, so that input echoed back (a
prediction's input, an error quoting a file) can neither retitle nor clear the terminal, and
bytes that were not UTF-8 print instead of failing."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the lone surrogates that stand for
# undecodable bytes of a command-line argument (Python's surrogateescape)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    r"""``text`` with every control character written as an escape.

    >>> printable("a\x1b]0;owned\x07b\tc")
    'a\\x1b]0;owned\\x07b\tc'
    >>> printable("caf\udce9")
    'caf\\udce9'
    """
    return _UNSAFE.sub(_escape, text)


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def json_line(value: object) -> str:
    """``value`` as one line of JSON, non-ASCII text kept as it is but every control character
    and undecodable byte written as a \\u escape (still valid JSON)."""
    import json

    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))
