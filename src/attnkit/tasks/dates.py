"""Human-written dates -> ISO 8601 ("YYYY-MM-DD").

The classic attention demonstration (Bahdanau et al. 2014; the Keras date-translation
examples): a model reads "Wednesday, September 14, 1994" or "14.09.94" character by character
and writes "1994-09-14".

Worked example, ``format_date(date(1994, 9, 14), "d MMM, yyyy", "fr_FR")`` gives
"14 sept., 1994"; with title casing the pair is ("14 Sept., 1994", "1994-09-14"). The input is
encoded per character with the source vocabulary ("1" -> id of "1", ...), the target as the ten
characters of "1994-09-14" followed by end-of-sequence.

Dates lie in 1950-01-01 .. 2049-12-31, so a two-digit year has one reading. Babel's "YYYY" is
the week-based year; every pattern here uses "yyyy". es_ES's short pattern "d/M/yy" would
collide with en_US's "M/d/yy" ("5/1/94" is 1 May in one and 5 January in the other), so es_ES
short dates are written "d/M/yyyy". ``generate`` also drops any input that would map to two
targets, so the data never contradicts itself.
"""

from __future__ import annotations

import datetime as dt
import random

from .base import PairTask, register

LOCALES = ("en_US", "en_GB", "es_ES", "fr_FR", "de_DE", "ru_RU", "zh_CN")
FORMATS = (
    "short", "medium", "long", "full",
    "d MMM yyyy", "d MMMM yyyy", "dd MMM yyyy", "d MMM, yyyy", "d MMMM, yyyy", "dd, MMM yyyy",
    "d MM yy", "MMMM d yyyy", "MMMM d, yyyy", "dd.MM.yy",
)  # fmt: skip
OVERRIDES = {("es_ES", "short"): "d/M/yyyy"}
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
CASES = (str.lower, str.upper, str.title, str)


def render(date: dt.date, fmt: str, locale: str) -> str:
    """The date written with a babel pattern (or named format) in a locale."""
    from babel.dates import format_date  # the [tasks] extra

    return format_date(date, OVERRIDES.get((locale, fmt), fmt), locale=locale)


def generate(
    n: int, seed: int = 0, locales: tuple[str, ...] = LOCALES, formats: tuple[str, ...] = FORMATS
) -> list[tuple[str, str]]:
    """``n`` (human date, ISO date) pairs, deterministic in ``seed``; duplicates are allowed."""
    from faker import Faker  # the [tasks] extra

    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    pairs, target_of = [], {}
    while len(pairs) < n:
        date = fake.date_between_dates(FIRST, LAST)
        text = rng.choice(CASES)(render(date, rng.choice(formats), rng.choice(locales)))
        iso = date.isoformat()
        if target_of.setdefault(text, iso) != iso:
            continue  # never one input with two targets
        pairs.append((text, iso))
    return [(t, iso) for t, iso in pairs if target_of[t] == iso]


@register("dates")
class DatesTask(PairTask):
    """Human-written dates in 7 locales -> ISO 8601; see the module docstring for the data.

    Worked example: the pair ("14 Sept., 1994", "1994-09-14") is encoded character by character,
    the input with the source vocabulary ("1" -> its id, "4" -> its id, ...), the target as the
    ten characters of "1994-09-14" followed by the end-of-sequence id. Exact match (the whole
    ISO string right) selects the best model.
    """

    default_n = 30_000

    @staticmethod
    def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
        return generate(n, seed)
