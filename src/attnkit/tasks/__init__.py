"""Tasks: registered data sets with their vocabularies and metrics (see ``base``).

``get(name)`` gives a task class, ``names()`` the ones that generate their own data
("dates", "times"); ``PairTask`` serves any list of string pairs (a TSV, CSV or JSON file).
"""

from . import (  # noqa: F401  (registers the tasks)
    captions,
    classify,
    dates,
    images,
    lm,
    longmemory,
    price_windows,
    times,
    translation,
)
from .base import PairTask, from_config, get, names, register
from .metrics import char_accuracy, exact_match
from .normalize import Normalizer
from .pairs import PairBatch, PairDataset, read_pairs, read_tsv, split, write_tsv
from .vocab import CharVocab, UnknownCharactersError

__all__ = [
    "CharVocab",
    "Normalizer",
    "PairBatch",
    "PairDataset",
    "PairTask",
    "UnknownCharactersError",
    "char_accuracy",
    "exact_match",
    "from_config",
    "get",
    "names",
    "read_pairs",
    "read_tsv",
    "register",
    "split",
    "write_tsv",
]
