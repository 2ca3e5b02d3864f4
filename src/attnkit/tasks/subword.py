"""Subword vocabularies: a sentencepiece model (Kudo & Richardson 2018) behind the interface of
:class:`~attnkit.tasks.vocab.CharVocab`.

The model is trained on the training split only and travels in the checkpoint (its serialised
protobuf, base64 in the task's config), so a reloaded model reads and writes text exactly as it
did in training. Ids 0, 1, 2, 3 are padding, start, end of sequence and unknown, as in
``CharVocab``; a character the training text never held becomes the unknown piece.

>>> texts = ["the cat sat on the mat", "the dog sat on the log"] * 20
>>> v = SubwordVocab.train(texts, vocab_size=30)
>>> v.decode(v.encode("the cat sat", eos=True))
'the cat sat'
>>> SubwordVocab.from_config(v.to_config()).encode("the dog") == v.encode("the dog")
True
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

__all__ = ["SubwordVocab", "words_of"]


class SubwordVocab:
    """Text <-> subword ids with a sentencepiece model (BPE by default)."""

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3
    n_special = 4

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.proto)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"not a sentencepiece model: {err}") from None
        ids = (self.sp.pad_id(), self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id())
        if ids != (0, 1, 2, 3):
            raise ValueError(f"the sentencepiece model's special ids are {ids}, not (0, 1, 2, 3)")

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        vocab_size: int = 8000,
        model_type: str = "bpe",
    ) -> SubwordVocab:
        """A model trained on ``texts`` (deterministic: one thread, input in the given order).
        ``vocab_size`` is lowered to what the text supports, with a note in ``.trained_size``."""
        import sentencepiece as spm

        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("no text to train a subword vocabulary on")
        needed = len({c for t in texts for c in t if not c.isspace()}) + 5  # + 4 specials, "▁"
        if vocab_size < needed:  # every character is a piece (character_coverage 1.0)
            raise ValueError(
                f"a vocabulary of {vocab_size} subwords cannot hold the {needed - 5} distinct "
                f"characters of this text and the 5 special pieces: use --vocab-size {needed} "
                "or more"
            )
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=out,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            pad_id=0,
            bos_id=1,
            eos_id=2,
            unk_id=3,
            num_threads=1,
            shuffle_input_sentence=False,
            input_sentence_size=0,
            hard_vocab_limit=False,  # a small text gets the vocabulary it supports
            minloglevel=2,
        )
        return cls(out.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def unknown(self, text: str) -> list[str]:
        """Nothing is refused: a character the model never saw reads as the unknown piece."""
        return []

    def unseen(self, text: str) -> list[str]:
        """The characters of ``text`` that become the unknown piece."""
        return sorted(
            {c for c in text if not c.isspace() and self.sp.piece_to_id(c) == self.unk_id}
        )

    def encode(self, text: str, eos: bool = False) -> list[int]:
        ids = list(self.sp.encode(text))
        return [*ids, self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first end-of-sequence; special ids are dropped."""
        keep = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= self.n_special or i == self.unk_id:
                keep.append(i)
        return self.sp.decode(keep)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The subword of each id, as sentencepiece writes it (a word starts with "▁")."""
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def words(self, text: str, ids: Sequence[int]) -> list[tuple[str, list[int]]]:
        """(word as written in ``text``, the indices of its pieces in ``ids``), where ``ids`` is
        ``encode(text)``: pieces never cross whitespace, so each whitespace-separated word is
        encoded alone; should that not give ``ids`` (normalisation that adds spaces), the
        pieces' own spelling is used (:func:`words_of`). Unknown characters keep their form.

        >>> v = SubwordVocab.train(["the cat sat on the mat"] * 20, vocab_size=30)
        >>> v.words("the ☃cat", v.encode("the ☃cat"))
        [('the', [0]), ('☃cat', [1, 2, 3, 4])]
        """
        ids = list(ids)
        words, at = [], 0
        for word in text.split():
            n = len(self.sp.encode(word))
            if n:
                words.append((word, list(range(at, at + n))))
            at += n
        if at != len(ids) or [i for w, _ in words for i in self.sp.encode(w)] != ids:
            return words_of(self.pieces(ids))
        return words

    def to_config(self) -> str:
        return base64.b64encode(self.proto).decode("ascii")

    @classmethod
    def from_config(cls, data: object) -> SubwordVocab:
        if not isinstance(data, str):
            raise ValueError("a subword vocabulary is a base64 string")
        try:
            proto = base64.b64decode(data.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise ValueError("the subword vocabulary is not valid base64") from None
        return cls(proto)


def words_of(pieces: Sequence[str]) -> list[tuple[str, list[int]]]:
    """(word, the indices of its pieces): sentencepiece pieces grouped into the words they spell
    (a piece starting with "▁" starts a word).

    >>> words_of(["▁In", "▁the", "▁begin", "ning", ","])
    [('In', [0]), ('the', [1]), ('beginning,', [2, 3, 4])]
    """
    words: list[tuple[str, list[int]]] = []
    for i, piece in enumerate(pieces):
        if piece.startswith("▁") or not words:
            words.append((piece.lstrip("▁"), [i]))
        else:
            words[-1] = (words[-1][0] + piece, [*words[-1][1], i])
    return words
