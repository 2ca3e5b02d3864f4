"""Recipes: task + model + trainer + defaults, assembled once for the CLI, demo and benchmarks.

- ``seq2seq``: string-to-string tasks (dates, times, a TSV file) with the RNN encoder-decoder.
"""

from . import seq2seq

__all__ = ["seq2seq"]
