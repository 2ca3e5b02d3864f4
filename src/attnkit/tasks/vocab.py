"""Vocabularies: tokens <-> ids, with the special tokens every model needs.

A vocabulary owns its special tokens: ``pad_id``, ``bos_id`` (start of sequence) and
``eos_id`` (end of sequence). Models take these ids from their config, which a recipe fills
from the vocabulary, so no model depends on a task. :class:`CharVocab` tokenises per
character; a subword vocabulary has the same interface (``encode``, ``decode``, ``unknown``,
the ids, ``to_list`` / ``from_list`` for checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable

SPECIALS = ("<pad>", "<s>", "</s>")
UNK = "<unk>"


class UnknownCharactersError(ValueError):
    """The text holds characters the vocabulary (and so the model) has never seen."""

    def __init__(self, text: str, chars: list[str]) -> None:
        shown = ", ".join(repr(c) for c in chars[:20]) + (", ..." if len(chars) > 20 else "")
        quoted = repr(text) if len(text) <= 60 else f"{text[:57]!r}... ({len(text):,} characters)"
        super().__init__(f"input {quoted} has characters outside the vocabulary: {shown}")
        self.chars = chars


class CharVocab:
    """Characters <-> ids; ids 0, 1, 2 are padding, start and end of sequence.

    With ``unk`` id 3 stands for every character outside the vocabulary, which then reads any
    text; without it such characters are an error.

    >>> v = CharVocab("ab")
    >>> v.pad_id, v.bos_id, v.eos_id
    (0, 1, 2)
    >>> v.encode("ba", eos=True), v.decode([4, 3, 2, 3])
    ([4, 3, 2], 'ba')
    >>> CharVocab("ab", unk=True).encode("a?b")
    [4, 3, 5]
    """

    pad_id, bos_id, eos_id = 0, 1, 2  # the positions of SPECIALS

    def __init__(self, chars: Iterable[str], unk: bool = False) -> None:
        specials = (*SPECIALS, UNK) if unk else SPECIALS
        self.unk_id: int | None = len(SPECIALS) if unk else None
        self.itos: list[str] = [*specials, *sorted(set(chars) - set(specials))]
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}
        self.n_special = len(specials)

    @classmethod
    def from_texts(cls, texts: Iterable[str], unk: bool = False) -> CharVocab:
        return cls({c for t in texts for c in t}, unk)

    def __len__(self) -> int:
        return len(self.itos)

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` the vocabulary cannot encode (none, with ``unk``)."""
        if self.unk_id is not None:
            return []
        return sorted({c for c in text if c not in self.stoi})

    def encode(self, text: str, eos: bool = False) -> list[int]:
        """Ids of ``text``; raises UnknownCharactersError for characters not in the vocabulary
        (unless it has ``unk``, whose id they then get)."""
        missing = self.unknown(text)
        if missing:
            raise UnknownCharactersError(text, missing)
        ids = [self.stoi.get(c, self.unk_id) for c in text]
        return [*ids, self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first end-of-sequence; special ids are dropped."""
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i >= self.n_special:
                out.append(self.itos[i])
        return "".join(out)

    def to_list(self) -> list[str]:
        return list(self.itos[self.n_special :])

    @classmethod
    def from_list(cls, chars: list[str], unk: bool = False) -> CharVocab:
        return cls(chars, unk)
