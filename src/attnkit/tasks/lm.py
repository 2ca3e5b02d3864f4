"""Character language modelling: predict each next character of a text.

Worked example. The vocabulary holds the specials and the text's characters, so for the
training text "abba" ids are <pad> 0, <s> 1, </s> 2, a 3, b 4. With ``context`` 3 the trainer
reads windows of 4 ids, [a b b a] = [3, 4, 4, 3]: the model sees [3, 4, 4] and is scored on
predicting [4, 4, 3], each position only from those before it. Held-out text is read in
consecutive windows, so each of its characters but the first is predicted exactly once, from
up to ``context`` characters before it (within its window); the metric is bits per character,
the mean negative log2-probability of the true next character.

The default corpus is the World English Bible (:mod:`attnkit.tasks.bible`), one verse per
line, split by book; ``from_text`` splits a user's text into its first 90% for training and
two 5% parts for validation and test, at line boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import register
from .vocab import CharVocab

__all__ = ["Corpus", "LMBatch", "LMTask", "TextWindows", "corpus_from_text", "default_corpus"]


@dataclass
class Corpus:
    """Train, validation and test text, and where they came from."""

    train: str
    valid: str
    test: str
    source: dict[str, Any]


def default_corpus() -> Corpus:
    """The World English Bible, one verse per line, split by book (see ``split_books``)."""
    from .bible import read_bible, split_books

    verses = read_bible("web")
    train_b, valid_b, test_b = split_books([v.book for v in verses])

    def text(books: Sequence[str]) -> str:
        keep = set(books)
        return "".join(v.text + "\n" for v in verses if v.book in keep)

    source = {"corpus": "web", "valid_books": valid_b, "test_books": test_b}
    return Corpus(text(train_b), text(valid_b), text(test_b), source)


def corpus_from_text(text: str, source: dict[str, Any] | None = None) -> Corpus:
    """The first 90% of ``text`` for training, then 5% validation and 5% test, cut at line
    ends (at characters where the text has too few lines)."""
    if len(text) < 100:
        raise ValueError(
            f"the text has {len(text)} characters; a language model needs at least 100"
        )
    cuts = [_cut(text, round(len(text) * f)) for f in (0.9, 0.95)]
    train, valid, test = text[: cuts[0]], text[cuts[0] : cuts[1]], text[cuts[1] :]
    if not (train and valid and test):
        raise ValueError("the text is too short to split into training, validation and test")
    return Corpus(train, valid, test, source or {})


def _cut(text: str, at: int) -> int:
    """The line end nearest after ``at``, unless that is more than 2% of the text away."""
    end = text.find("\n", at)
    return end + 1 if 0 <= end - at <= max(len(text) // 50, 1) else at


class LMBatch(NamedTuple):
    tokens: Tensor  # (B, T + 1) ids; the model reads [:, :-1] and predicts [:, 1:]


class TextWindows:
    """A text's ids, read as windows of ``context + 1`` ids.

    For the trainer ``len`` is the number of windows in one epoch and ``batch(starts)`` takes
    start offsets (the recipe's sampler draws them at random); ``windows()`` gives the
    consecutive windows that evaluation reads."""

    def __init__(self, ids: Tensor, context: int, per_epoch: int | None = None) -> None:
        if ids.dim() != 1 or len(ids) < 2:
            raise ValueError("a text needs at least 2 characters")
        self.ids, self.context = ids, context
        self.span = min(context, len(ids) - 1)  # the longest window the text allows
        self.starts = len(ids) - self.span  # valid start offsets: 0 .. starts - 1
        self.per_epoch = per_epoch or max(1, len(ids) // self.span)

    def __len__(self) -> int:
        return self.per_epoch

    def batch(self, starts: Tensor) -> LMBatch:
        offsets = torch.arange(self.span + 1)
        return LMBatch(self.ids[starts.long()[:, None] % self.starts + offsets])

    def windows(self, batch_size: int = 64):
        """Consecutive windows of up to context + 1 ids, each overlapping the last by one id
        (the last may be shorter); batches of equal length."""
        step = self.span
        starts = list(range(0, len(self.ids) - 1, step))
        full = [s for s in starts if s + step + 1 <= len(self.ids)]
        for i in range(0, len(full), batch_size):
            idx = torch.tensor(full[i : i + batch_size])
            yield LMBatch(self.ids[idx[:, None] + torch.arange(step + 1)])
        if len(full) < len(starts):
            yield LMBatch(self.ids[starts[-1] :][None])


@register("lm")
class LMTask:
    """A character language model's task: vocabulary, windows and bits per character."""

    default_n: ClassVar[int | None] = None  # reads a corpus; generates nothing
    selection_metric: ClassVar[str] = "bits_per_char"
    lower_is_better: ClassVar[bool] = True
    name: ClassVar[str]

    def __init__(self, vocab: CharVocab, context: int = 256) -> None:
        if isinstance(context, bool) or not isinstance(context, int) or context < 1:
            raise ValueError(f"context must be an int >= 1, got {context!r}")
        self.vocab, self.context = vocab, context

    @classmethod
    def from_text(cls, text: str, context: int = 256, *held_out: str) -> LMTask:
        """The task of a model trained on ``text``; its vocabulary also holds the characters
        of the ``held_out`` texts (the alphabet, not what follows what: a character seen only
        there is scored, badly, instead of failing the evaluation)."""
        return cls(CharVocab.from_texts([text, *held_out]), context)

    def encode(self, text: str) -> Tensor:
        """Ids of ``text``; UnknownCharactersError for characters the model never saw."""
        return torch.tensor(self.vocab.encode(text), dtype=torch.long)

    def dataset(self, text: str, per_epoch: int | None = None) -> TextWindows:
        return TextWindows(self.encode(text), self.context, per_epoch)

    @torch.no_grad()
    def evaluate(self, model: Any, data: TextWindows) -> dict[str, float]:
        """Bits per character of ``data`` and the characters it counted."""
        from ..train.devices import device_of

        was_training = model.training
        model.eval()
        device = device_of(model)
        total, count = 0.0, 0
        for batch in data.windows():
            tokens = batch.tokens.to(device)
            logits = model(tokens[:, :-1]).float()
            total += F.cross_entropy(
                logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="sum"
            ).item()
            count += tokens[:, 1:].numel()
        model.train(was_training)
        return {"bits_per_char": total / count / math.log(2), "chars": count}

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "vocab": self.vocab.to_list(), "context": self.context}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LMTask:
        vocab = config.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(c, str) for c in vocab):
            raise ValueError("the language model's vocabulary must be a list of strings")
        return cls(CharVocab.from_list(vocab), config.get("context", 256))
