"""Times of day as people write them -> 24-hour "HH:MM".

The generator writes one (hour, minute) in one of these families, with numbers as digits or
words (``"twenty-five"`` or ``"twenty five"``) wherever people use both:

- 24-hour clock: "19:30", "19.30", "19:30:15", "1930", "730", "19h30", "19h", "0730 hrs", "19.30h",
  "1930 hours", "t19:30" (the classic Keras tutorial's prefix); in words "nineteen thirty",
  "nineteen hundred hours", "oh seven hundred";
- 12-hour clock: "7:45 PM", "7.45pm", "7 p. m.", "07:45 a.m.", "7 30 pm", "7 o'clock";
- period phrases instead of (or as) am/pm: "in the morning", "in the afternoon",
  "in the evening", "at night", "before noon", "after noon", "at midnight";
- relative forms: quarter / half / N [minutes] past, after, to, till, til, of, before an hour
  ("quarter till 5 in the afternoon", "ten of five", "23 min after 20 p.m.", "half seven");
- clock words: "seven thirty", "seven oh five", "seven-thirty", "six o'clock",
  "ten o'clock twenty a.m", "six hours and fifty five am";
- noon, midday, midnight, alone ("12 noon", "twelve midnight") and in the forms above
  ("quarter past noon", "ten to midnight", "noon thirty");
- an optional lead word ("at", "around", "about", "by") and any letter case.

Each string has exactly one reading, by these rules:

1. An hour of 1-12 with no am/pm and no period phrase is read as written: "half past one" is
   01:30, "quarter to twelve" 11:45, "ten to one" 00:50. An hour of 13-23 (or 0) is a 24-hour
   hour, and a "pm" or "after noon" after it is redundant ("23 min after 20 p.m." is 20:23, as
   in the tutorial's data).
2. "12 am", "12 at night" and "12 at midnight" are 00:xx ("1 at midnight" and "2 at midnight",
   as the tutorial writes, 01:xx and 02:xx); "12 pm" and "12 noon" are 12:xx.
   "At night" is pm for 7-11 and am for 12 and 1-4 (never written with 5 or 6); "in the
   evening" is pm for 4-11; "in the afternoon" pm for 12-6; "in the morning" and "before noon"
   am for 1-11.
3. A relative form's period belongs to the hour it names: "quarter to nine at night" is 20:45.
4. Digits without a separator: three are H MM ("730"), four are HH MM ("0730", "1930").
5. Seconds are dropped: "23:59:30" is 23:59. "Half seven" is 07:30, as in British English.

Worked example: (h, m) = (16, 45) rendered as "quarter till 5 in the afternoon" -> target
"16:45"; the task folds case and spacing first (``Normalizer``), then encodes the input per
character and the target as "1", "6", ":", "4", "5" followed by end-of-sequence.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .base import PairTask, register

ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}
AM = ("am", "a.m.", "a.m", "a. m.", "am", "a.m.")
PM = ("pm", "p.m.", "p.m", "p. m.", "pm", "p.m.")
OCLOCK = ("o'clock", "o'clock", "o'clock", "oclock", "o clock")
LEADS = ("at ", "around ", "about ", "by ")
NOON, MIDNIGHT = ("noon", "midday"), ("midnight",)


def number_words(n: int, hyphen: bool = False) -> str:
    """0..59 in words: 7 -> "seven", 55 -> "fifty five" (or "fifty-five")."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (("-" if hyphen else " ") + ONES[ones] if ones else "")


def _num(rng: random.Random, n: int, words: float = 0.5) -> str:
    """``n`` as digits or (with probability ``words``) in words."""
    return number_words(n, rng.random() < 0.3) if rng.random() < words else str(n)


def _h12(h: int) -> tuple[int, bool]:
    """24-hour h -> (1..12, is_pm)."""
    return (h % 12 or 12), h >= 12


def _periods(h: int) -> list[str]:
    """The period phrases (beyond am/pm) that place hour ``h`` (0-23) when written as 1-12."""
    h12, pm = _h12(h)
    out = []
    if not pm and 1 <= h12 <= 11:
        out += ["in the morning", "before noon"]
    if not pm and (1 <= h12 <= 4 or h12 == 12):
        out.append("at night")
    if not pm and (h12 == 12 or h12 <= 2):
        out.append("at midnight")  # the tutorial's "27 before one at midnight" is 00:33
    if pm and (h12 == 12 or h12 <= 6):
        out.append("in the afternoon")
    if pm:
        out.append("after noon")
    if pm and 4 <= h12 <= 11:
        out.append("in the evening")
    if pm and 7 <= h12 <= 11:
        out.append("at night")
    return out


def _marker(rng: random.Random, h: int, attached: bool = True) -> str:
    """Text after a 12-hour time that makes it hour ``h``: " pm", "pm", " in the evening"..."""
    phrases = _periods(h)
    if phrases and rng.random() < 0.3:
        return " " + rng.choice(phrases)
    mark = rng.choice(PM if h >= 12 else AM)
    return mark if attached and rng.random() < 0.3 else " " + mark


def _place(rng: random.Random, text: str, h: int, attached: bool = False) -> str:
    """``text`` (an hour written 1-12) made to read as hour ``h``: a marker where rule 1 would
    read it otherwise, an optional one where it reads right as written."""
    if 1 <= h <= 12 and rng.random() < 0.4:
        return text
    return text + _marker(rng, h, attached)


# Each renderer returns the text for (h, m), or None when it cannot write that time.
def _clock24(rng, h, m):
    hh = f"{h:02d}" if h < 10 and rng.random() < 0.7 else str(h)
    kind = rng.random()
    if kind < 0.35:
        text = f"{hh}{rng.choice(':::.')}{m:02d}"
        if rng.random() < 0.08:
            text += f"{text[-3]}{rng.randrange(60):02d}"  # seconds, dropped (rule 5)
        if rng.random() < 0.15:
            text = "t" + text
    elif kind < 0.55:
        text = f"{h:02d}{m:02d}" if h >= 10 or rng.random() < 0.6 else f"{h}{m:02d}"
    elif kind < 0.75:
        text = f"{hh}h{m:02d}" if m or rng.random() < 0.5 else f"{hh}h"
        return text
    else:
        sep = rng.choice([":", ".", ""])
        text = f"{h:02d}{sep}{m:02d}" if sep == "" else f"{hh}{sep}{m:02d}"
    if rng.random() < 0.35:
        text += rng.choice([" hrs", " hours", "h", " h", "hrs"])
    return text


def _clock12(rng, h, m):
    h12, _ = _h12(h)
    hh = f"{h12:02d}" if rng.random() < 0.15 else str(h12)
    if m == 0 and rng.random() < 0.5:
        body = hh if rng.random() < 0.6 else number_words(h12)  # "7 pm", "seven in the evening"
    else:
        sep = rng.choices([":", ".", " "], [0.7, 0.22, 0.08])[0]
        body = f"{hh}{sep}{m:02d}"
        if sep == ":" and rng.random() < 0.05:
            body += f":{rng.randrange(60):02d}"  # seconds, dropped (rule 5)
    if rng.random() < 0.05:
        body = "t" + body
    return _place(rng, body, h, attached=True)


def _clock_words(rng, h, m):
    """'seven thirty', 'seven oh five pm', 'six o'clock', "ten o'clock twenty a.m"."""
    h12, _ = _h12(h)
    kind = rng.random()
    if m == 0 and kind < 0.5:
        body = f"{_num(rng, h12, 0.7)} {rng.choice(OCLOCK)}"
    elif kind < 0.15:  # the tutorial's form
        body = f"{number_words(h12)} {rng.choice(OCLOCK)} {number_words(m)}"
    elif kind < 0.35:  # the tutorial's other form
        unit = rng.choice(["", "", " minutes", " min"]) if m != 1 else rng.choice(["", " minute"])
        hours = "hour" if h12 == 1 and rng.random() < 0.5 else "hours"
        body = f"{_num(rng, h12, 0.8)} {hours} and {_num(rng, m, 0.8)}{unit}"
    else:
        if m == 0:
            mins = rng.choice(OCLOCK)
        elif m < 10:
            mins = "oh " + ONES[m] if rng.random() < 0.8 else "o " + ONES[m]
        else:
            mins = number_words(m, rng.random() < 0.3)
        body = f"{number_words(h12)}{'-' if rng.random() < 0.15 else ' '}{mins}"
    return _place(rng, body, h)


def _words24(rng, h, m):
    """'nineteen thirty', 'nineteen hundred hours', 'oh seven hundred'."""
    if h < 13 and not (h < 10 and m == 0):
        return None
    hour = number_words(h) if h >= 10 else "oh " + ONES[h] if h else "zero"
    if m == 0:
        text = f"{hour} hundred"
    elif m < 10:
        text = f"{hour} oh {ONES[m]}"
    else:
        text = f"{hour} {number_words(m, rng.random() < 0.3)}"
    return text + (rng.choice([" hours", " hrs"]) if rng.random() < 0.4 else "")


def _hour_name(rng, ref: int, allow_24: bool) -> str | None:
    """The hour ``ref`` (0-23) as a relative form names it, with its marker; None if it cannot."""
    if ref == 12 and rng.random() < 0.5:
        return rng.choice(NOON)
    if ref == 0 and rng.random() < 0.6:
        return "midnight"
    if ref > 12 and allow_24 and rng.random() < 0.3:  # rule 1's redundant pm
        extra = rng.choice(["", "", " pm", " p.m.", " after noon"])
        return f"{_num(rng, ref, 0.3)}{extra}"
    h12, _ = _h12(ref)
    return _place(rng, _num(rng, h12), ref)


def _relative(rng, h, m):
    """quarter / half / N minutes past, after, to, till, of, before an hour."""
    if m == 0:  # the tutorial's "zero min after 8 a.m."
        return f"zero min after {_hour_name(rng, h, allow_24=True)}" if rng.random() < 0.1 else None
    after = m <= 30 if rng.random() < 0.8 else rng.random() < 0.5
    delta = m if after else 60 - m
    ref = h if after else (h + 1) % 24
    if after:
        word = rng.choice(["past", "past", "after"])
    else:
        word = rng.choice(["to", "to", "till", "til", "of", "before"])
    if delta == 30 and after and rng.random() < 0.08:  # "half seven": British, 07:30
        return f"half {_place(rng, _num(rng, _h12(ref)[0]), ref)}"
    amount = None
    if delta == 15 and rng.random() < 0.8:
        amount = rng.choice(["quarter", "a quarter"])
    elif delta == 30 and after and rng.random() < 0.8:
        amount = "half"
    if amount is None:
        unit = rng.choice(["", " minutes", " min", " mins"]) if delta > 1 else " minute"
        amount = _num(rng, delta, 0.6) + unit
    hour = _hour_name(rng, ref, allow_24=word in ("after", "before") and "min" in amount)
    bare = not amount.endswith(("min", "mins", "minute", "minutes", "quarter", "half"))
    if hour in (*NOON, *MIDNIGHT) and bare:
        amount += " minutes" if delta > 1 else " minute"  # "5 before noon" would read as 05:00
    return f"{amount} {word} {hour}"


def _special(rng, h, m):
    """noon, midday, midnight, '12 noon', 'twelve midnight', 'noon thirty'."""
    if (h, m) == (12, 0):
        return rng.choice(
            [
                "noon",
                "midday",
                "noon",
                "12 noon",
                "twelve noon",
                "12:00 noon",
                "mid-day",
                "twelve o'clock noon",
            ]
        )
    if (h, m) == (0, 0):
        return rng.choice(
            ["midnight", "midnight", "12 midnight", "twelve midnight", "12:00 midnight"]
        )
    if h in (0, 12) and m and rng.random() < 0.5:
        name = rng.choice(NOON) if h == 12 else "midnight"
        mins = f"oh {ONES[m]}" if m < 10 else number_words(m)
        return f"{name} {mins}"
    return None


RENDERERS: tuple[tuple[Callable, float], ...] = (
    (_clock24, 0.22),
    (_clock12, 0.26),
    (_clock_words, 0.18),
    (_words24, 0.04),
    (_relative, 0.26),
)
CASES = (str.lower, str.lower, str.lower, str.upper, str.title, str.capitalize)


def _minute(rng: random.Random) -> int:
    """People write whole hours and round minutes more often than the others."""
    kind = rng.random()
    return 0 if kind < 0.12 else rng.randrange(0, 60, 5) if kind < 0.45 else rng.randrange(60)


def render(rng: random.Random, h: int, m: int) -> str | None:
    """(h, m) in one of the families, or None when the chosen one cannot write it."""
    if h in (0, 12) and rng.random() < (0.5 if m == 0 else 0.15):
        return _special(rng, h, m)
    fns, weights = zip(*RENDERERS, strict=True)
    text = rng.choices(fns, weights)[0](rng, h, m)
    if text is None:
        return None
    if rng.random() < 0.06:
        text = rng.choice(LEADS) + text
    return rng.choice(CASES)(text) if rng.random() < 0.3 else text


def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (human time, "HH:MM") pairs, deterministic in ``seed``."""
    from .normalize import Normalizer

    rng = random.Random(seed)
    key = Normalizer(TimesTask.normalization).apply
    pairs, target_of = [], {}
    while len(pairs) < n:
        h, m = rng.randrange(24), _minute(rng)
        if rng.random() < 0.02:
            h, m = rng.choice([(12, 0), (0, 0)])
        text = render(rng, h, m)
        if text is None:
            continue
        target = f"{h:02d}:{m:02d}"
        if target_of.setdefault(key(text), target) != target:
            raise AssertionError(f"{text!r} read as both {target_of[key(text)]} and {target}")
        pairs.append((text, target))
    return pairs


@register("times")
class TimesTask(PairTask):
    """Times of day as people write them -> "HH:MM"; the module docstring lists the forms and
    the reading rules.

    Worked example: "Quarter till 5 in the afternoon" is folded to "quarter till 5 in the
    afternoon" and encoded as the ids of its 31 characters; the target "16:45" as the ids of
    "1", "6", ":", "4", "5" and then end-of-sequence. Exact match selects the best model.
    """

    default_n = 20_000
    normalization = ("nfkc", "quotes", "casefold", "spaces")

    @staticmethod
    def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
        return generate(n, seed)
