"""Data sets for the reference models: generated pairs, vocabularies and metrics."""

from .metrics import char_accuracy, exact_match
from .pairs import PairDataset, read_tsv, split, write_tsv
from .vocab import EOS, PAD, SOS, CharVocab, UnknownCharactersError

TASKS = ("dates", "times")


def generate(task: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs of a named task ("dates" or "times")."""
    if task == "dates":
        from . import dates

        return dates.generate(n, seed)
    if task == "times":
        from . import times

        return times.generate(n, seed)
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


__all__ = [
    "EOS", "PAD", "SOS", "TASKS", "CharVocab", "PairDataset", "UnknownCharactersError",
    "char_accuracy", "exact_match", "generate", "read_tsv", "split", "write_tsv",
]  # fmt: skip
