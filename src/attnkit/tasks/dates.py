"""Human-written dates -> ISO 8601 ("YYYY-MM-DD").

The classic attention demonstration (Bahdanau et al. 2014; the Keras date-translation
examples): a model reads "Wednesday, September 14, 1994" or "14.09.94" character by character
and writes "1994-09-14".

Worked example, ``format_date(date(1994, 9, 14), "d MMM, yyyy", "fr_FR")`` gives
"14 sept., 1994"; with title casing the pair is ("14 Sept., 1994", "1994-09-14"). The input is
encoded per character with the source vocabulary ("1" -> id of "1", ...), the target as the ten
characters of "1994-09-14" followed by end-of-sequence.

Beside babel's patterns the generator writes what people type and babel does not: English
ordinals ("14th September 1994", "the 3rd of March, 2021", "Sept. 14th 1994"), abbreviations
with and without their periods in every locale that abbreviates ("14 sept. 1994" and
"14 sept 1994", "Sep 14" and "Sept. 14"), the French "1er", and numeric forms that cannot be
read two ways, year first ("1994-09-14", "1994/09/14", "1994.09.14"). Day-first and
month-first slashes stay as the locales write them (en_US "9/14/94" with a two-digit year,
en_GB "14/09/1994", es_ES "14/9/1994"): mixing in the other order, even where a day above 12
tells them apart, made the model misread the US short form's month and day.

Dates lie in 1950-01-01 .. 2049-12-31, so a two-digit year has one reading. Babel's "YYYY" is
the week-based year; every pattern here uses "yyyy". es_ES's short pattern "d/M/yy" would
collide with en_US's "M/d/yy" ("5/1/94" is 1 May in one and 5 January in the other), so es_ES
short dates are written "d/M/yyyy". ``generate`` also drops any input that would map to two
targets, so the data never contradicts itself.
"""

from __future__ import annotations

import datetime as dt
import random
import re

from .base import PairTask, register

LOCALES = ("en_US", "en_GB", "es_ES", "fr_FR", "de_DE", "ru_RU", "zh_CN")
FORMATS = (
    "short",
    "medium",
    "long",
    "full",
    "d MMM yyyy",
    "d MMMM yyyy",
    "dd MMM yyyy",
    "d MMM, yyyy",
    "d MMMM, yyyy",
    "dd, MMM yyyy",
    "d MM yy",
    "MMMM d yyyy",
    "MMMM d, yyyy",
    "dd.MM.yy",
    "EEE, d MMM yyyy",
    "EEE d MMMM yyyy",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TYPED_SHARE = 0.25  # of the pairs, written by ``typed`` rather than a babel pattern
# The numeric short forms are drawn twice as often as the others: their digits alone, in an
# order that differs by locale (en_US month first, the others day first), say which is the
# month, and a model needs enough of them to learn each order.
WEIGHTS = {"short": 2.0}
OVERRIDES = {("es_ES", "short"): "d/M/yyyy"}
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
CASES = (str.lower, str.upper, str.title, str)


def render(date: dt.date, fmt: str, locale: str) -> str:
    """The date written with a babel pattern (or named format) in a locale."""
    from babel.dates import format_date  # the [tasks] extra

    return format_date(date, OVERRIDES.get((locale, fmt), fmt), locale=locale)


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _month(rng: random.Random, date: dt.date) -> str:
    """The English month in full or abbreviated ("Sep", "Sept", with or without a period)."""
    full = MONTHS[date.month - 1]
    if rng.random() < 0.5:
        return full
    short = "Sept" if date.month == 9 and rng.random() < 0.5 else full[:3]
    return short + ("." if short != full and rng.random() < 0.4 else "")


def typed(rng: random.Random, date: dt.date) -> str:
    """A form people type that no babel pattern writes (see the module docstring)."""
    d, y = date.day, date.year
    kind = rng.random()
    if kind < 0.45:  # English ordinals
        day, month = ordinal(d), _month(rng, date)
        text = rng.choice(
            [
                f"{day} {month} {y}",
                f"{day} of {month} {y}",
                f"the {day} of {month}, {y}",
                f"{month} {day} {y}",
                f"{month} {day}, {y}",
                f"{day} {month}, {y}",
            ]
        )
        if rng.random() < 0.2:
            weekday = WEEKDAYS[date.weekday()]
            text = f"{weekday if rng.random() < 0.6 else weekday[:3]}, {text}"
        return text
    if kind < 0.6:  # English abbreviations, no ordinal
        month = _month(rng, date)
        return rng.choice([f"{month} {d}, {y}", f"{d} {month} {y}", f"{month} {d} {y}"])
    if kind < 0.85:  # year first: never ambiguous
        sep = rng.choice("-/.")
        return (
            f"{y}{sep}{date.month:02d}{sep}{d:02d}"
            if rng.random() < 0.7
            else (f"{y}{sep}{date.month}{sep}{d}")
        )
    # another locale's abbreviation written without its periods, or the French "1er"
    locale = rng.choice([loc for loc in LOCALES if loc != "zh_CN"])
    text = render(date, rng.choice(["d MMM yyyy", "medium", "EEE, d MMM yyyy"]), locale)
    if locale == "fr_FR" and d == 1:
        return re.sub(r"\b1 ", "1er ", text, count=1)
    return re.sub(r"(?<=[^\W\d_])\.", "", text)


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
        if rng.random() < TYPED_SHARE:
            text = rng.choice(CASES)(typed(rng, date))
        else:
            fmt = rng.choices(formats, [WEIGHTS.get(f, 1.0) for f in formats])[0]
            text = rng.choice(CASES)(render(date, fmt, rng.choice(locales)))
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
    normalization = ("nfkc", "quotes", "casefold", "spaces")

    @staticmethod
    def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
        return generate(n, seed)
