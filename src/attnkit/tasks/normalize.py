"""Input normalisation: the same text for the same meaning, before a model reads it.

A task chooses its steps when it is built (``PairTask.normalization``, or from the data for a
file of pairs), keeps them in the checkpoint, and applies them to every input it encodes: in
training, evaluation, prediction and pictures alike. The steps, applied in this order:

- ``nfkc``: Unicode NFKC (full-width "１９：３０" -> "19:30", ligatures, compatibility forms);
- ``quotes``: typographic apostrophes, quotes and dashes -> ASCII ("o’clock" -> "o'clock");
- ``casefold``: Unicode case folding ("PM" -> "pm", "MÄRZ" -> "märz");
- ``spaces``: runs of whitespace -> one space, none at either end.

    >>> Normalizer(["nfkc", "quotes", "casefold", "spaces"]).apply("  Seven O’Clock\\tPM ")
    "seven o'clock pm"
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

__all__ = ["STEPS", "Normalizer", "steps_for"]

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201b": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
_SPACES = re.compile(r"\s+")

STEPS: dict[str, Callable[[str], str]] = {
    "nfkc": lambda t: unicodedata.normalize("NFKC", t),
    "quotes": lambda t: t.translate(_QUOTES),
    "casefold": str.casefold,
    "spaces": lambda t: _SPACES.sub(" ", t).strip(),
}


class Normalizer:
    """The named steps of ``STEPS``, applied in ``STEPS``' order; ValueError for unknown ones."""

    def __init__(self, steps: Iterable[str] = ()) -> None:
        steps = list(steps)
        unknown = [s for s in steps if s not in STEPS]
        if unknown or not all(isinstance(s, str) for s in steps):
            raise ValueError(
                f"unknown normalisation steps {unknown!r}; expected some of {', '.join(STEPS)}"
            )
        self.steps = [s for s in STEPS if s in steps]

    def apply(self, text: str) -> str:
        for step in self.steps:
            text = STEPS[step](text)
        return text

    __call__ = apply

    def to_list(self) -> list[str]:
        return list(self.steps)

    def __repr__(self) -> str:
        return f"Normalizer({self.steps!r})"


def steps_for(texts: Sequence[str]) -> list[str]:
    """The steps that leave every one of ``texts`` as it is: safe to apply to new inputs of a
    data set written in that form, since they only map unseen variants onto seen ones (a data
    set in lower case gets ``casefold``; one whose case carries meaning does not).

    >>> steps_for(["7:45 pm", "noon"]), steps_for(["Paris", "paris"])
    (['nfkc', 'quotes', 'casefold', 'spaces'], ['nfkc', 'quotes', 'spaces'])
    """
    return [name for name, fn in STEPS.items() if all(fn(t) == t for t in texts)]
