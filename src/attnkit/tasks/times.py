"""Human-written times of day -> 24-hour "HH:MM".

Covers what people write: "13:09", "13.09", "t11:36", "1:09 pm", "9 a.m.", "twenty past ten",
"quarter to six pm", "half past one", "23 min after 20 p.m.", "48 min before 10 a.m",
"six fifty five am", "ten o'clock twenty a.m", "noon", "midnight". am/pm is written a.m., a.m,
am, pm, p.m. or p.m; numbers as digits or words.

Each string has exactly one reading, by these rules: an hour of 1-12 without am/pm is taken as
written (so "half past one" is 01:30 and "quarter past twelve" 12:15); "12 am" is 00:00; in
"M min after/before H" an hour above 12 is a 24-hour hour and any "p.m." after it is redundant
("23 min after 20 p.m." is 20:23, as in the Keras tutorial's data).

Worked example: (h, m) = (17, 45) rendered as "quarter to six pm" -> target "17:45"; the input
is encoded per character, the target as "1", "7", ":", "4", "5" then end-of-sequence.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .base import PairTask, register

ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)  # fmt: skip
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}
AM = ("a.m.", "a.m", "am")
PM = ("p.m.", "p.m", "pm")


def number_words(n: int) -> str:
    """0..59 in words: 7 -> "seven", 55 -> "fifty five"."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f" {ONES[ones]}" if ones else "")


def _h12(h: int) -> tuple[int, bool]:
    """24-hour h -> (1..12, is_pm)."""
    return (h % 12 or 12), h >= 12


def _suffix(rng: random.Random, pm: bool) -> str:
    return rng.choice(PM if pm else AM)


def _hour(rng: random.Random, h: int) -> str:
    return str(h) if rng.random() < 0.5 else number_words(h)


# Each renderer returns the text for (h, m), or None when it cannot write that time.
def _digits(rng, h, m):
    sep = rng.choice([":", ":", ".", ":"])
    hh = f"{h:02d}" if rng.random() < 0.6 else str(h)
    return rng.choice(["", "", "t"]) + f"{hh}{sep}{m:02d}"


def _digits_ampm(rng, h, m):
    h12, pm = _h12(h)
    body = f"{h12}:{m:02d}" if m or rng.random() < 0.5 else str(h12)
    return f"{body} {_suffix(rng, pm)}"


def _words_relative(rng, h, m):
    """past / to forms; the hour is 1..12, with am/pm or (when it reads as written) without."""
    if m == 0 or (m > 30 and m % 5 and rng.random() < 0.5):
        return None
    past = m <= 30
    mins = 60 - m if not past else m
    ref = h if past else (h + 1) % 24
    h12, pm = _h12(ref)
    plain = 1 <= ref <= 12  # "half past one" reads as written
    amount = {15: "quarter", 30: "half"}.get(mins) if rng.random() < 0.8 else None
    unit = " minute" if mins == 1 else " minutes"
    amount = amount or (number_words(mins) + rng.choice(["", unit]))
    text = f"{amount} {'past' if past else 'to'} {_hour(rng, h12)}"
    if plain and rng.random() < 0.4:
        return text
    return f"{text} {_suffix(rng, pm)}"


def _min_after(rng, h, m):
    """'23 min after 20 p.m.', '48 min before 10 a.m'."""
    if m == 0:
        return None
    after = rng.random() < 0.5
    ref = h if after else (h + 1) % 24
    delta = m if after else 60 - m
    unit = rng.choice(["min", "mins", "minutes"])
    if ref > 12:
        hour = f"{ref} p.m." if rng.random() < 0.5 else str(ref)
    else:
        h12, pm = _h12(ref)
        hour = f"{h12} {_suffix(rng, pm)}"
    return f"{delta} {unit} {'after' if after else 'before'} {hour}"


def _words_clock(rng, h, m):
    """'six fifty five am', "ten o'clock twenty a.m", 'seven oh five pm'."""
    h12, pm = _h12(h)
    if m == 0:
        body = f"{number_words(h12)} o'clock"
    elif rng.random() < 0.3:
        body = f"{number_words(h12)} o'clock {number_words(m)}"
    else:
        mins = f"oh {ONES[m]}" if m < 10 else number_words(m)
        body = f"{number_words(h12)} {mins}"
    return f"{body} {_suffix(rng, pm)}"


def _special(rng, h, m):
    if (h, m) == (12, 0):
        return "noon"
    if (h, m) == (0, 0):
        return "midnight"
    return None


RENDERERS: tuple[Callable, ...] = (_digits, _digits_ampm, _words_relative, _min_after,
                                   _words_clock)  # fmt: skip


def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (human time, "HH:MM") pairs, deterministic in ``seed``."""
    rng = random.Random(seed)
    pairs, target_of = [], {}
    while len(pairs) < n:
        h, m = rng.randrange(24), rng.randrange(60)
        if rng.random() < 0.01:
            h, m = rng.choice([(12, 0), (0, 0)])
        text = _special(rng, h, m) if rng.random() < 0.5 else None
        text = text or rng.choice(RENDERERS)(rng, h, m)
        if text is None:
            continue
        target = f"{h:02d}:{m:02d}"
        if target_of.setdefault(text, target) != target:
            raise AssertionError(f"{text!r} read as both {target_of[text]} and {target}")
        pairs.append((text, target))
    return pairs


@register("times")
class TimesTask(PairTask):
    """Human-written times of day -> "HH:MM"; see the module docstring for the forms and rules.

    Worked example: "quarter to six pm" is encoded as the ids of its 17 characters; the target
    "17:45" as the ids of "1", "7", ":", "4", "5" and then end-of-sequence. Exact match selects
    the best model.
    """

    default_n = 10_000

    @staticmethod
    def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
        return generate(n, seed)
