"""Character vocabularies."""

from __future__ import annotations

from collections.abc import Iterable

PAD, SOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<s>", "</s>")


class UnknownCharactersError(ValueError):
    """The text holds characters the vocabulary (and so the model) has never seen."""

    def __init__(self, text: str, chars: list[str]) -> None:
        shown = ", ".join(repr(c) for c in chars)
        super().__init__(f"input {text!r} has characters outside the vocabulary: {shown}")
        self.chars = chars


class CharVocab:
    """Characters <-> ids; ids 0, 1, 2 are padding, start and end of sequence.

    >>> v = CharVocab("ab")
    >>> v.encode("ba", eos=True), v.decode([4, 3, 2, 3])
    ([4, 3, 2], 'ba')
    """

    def __init__(self, chars: Iterable[str]) -> None:
        self.itos: list[str] = [*SPECIALS, *sorted(set(chars) - set(SPECIALS))]
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharVocab:
        return cls({c for t in texts for c in t})

    def __len__(self) -> int:
        return len(self.itos)

    def unknown(self, text: str) -> list[str]:
        return sorted({c for c in text if c not in self.stoi})

    def encode(self, text: str, eos: bool = False) -> list[int]:
        """Ids of ``text``; raises UnknownCharactersError for characters not in the vocabulary."""
        missing = self.unknown(text)
        if missing:
            raise UnknownCharactersError(text, missing)
        ids = [self.stoi[c] for c in text]
        return [*ids, EOS] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first end-of-sequence; special ids are dropped."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out)

    def to_list(self) -> list[str]:
        return list(self.itos[len(SPECIALS) :])

    @classmethod
    def from_list(cls, chars: list[str]) -> CharVocab:
        return cls(chars)
