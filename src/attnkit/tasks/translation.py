"""Translation between English and Spanish on verse pairs of two public-domain Bibles.

The World English Bible (``sword-text-web``) and the Reina-Valera 1909 (``sword-text-sparv``)
number their verses in different schemes (NRSVA and KJV). Verses are paired by reference
(book, chapter, verse) only in books that both schemes number alike (:func:`align`; 3 John and
Revelation are dropped), and only where both Bibles have text. Splits are by whole book
(``bible.split_books``), so no verse of a validation or test book is trained on, and the
subword vocabularies (:class:`~attnkit.tasks.subword.SubwordVocab`) are trained on the
training books only.

Worked example. The pair ("In the beginning, God created the heavens and the earth.",
"En el principio crió Dios los cielos y la tierra.") is Gen 1:1. In the direction en-es the
English verse is cut into subwords, say ["▁In", "▁the", "▁beginning", ",", "▁God", ...], and the
model writes the Spanish subwords one at a time followed by end of sequence. Scores are
sacreBLEU's corpus BLEU and chrF (Post 2018) on the detokenised output against the reference
verses, with their signatures.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import PairTask, register
from .normalize import Normalizer
from .pairs import PairDataset
from .subword import SubwordVocab

__all__ = [
    "DIRECTIONS",
    "LANGUAGES",
    "ParallelCorpus",
    "TranslationTask",
    "VersePair",
    "align",
    "as_pairs",
    "corpus_scores",
    "joined_verses",
    "parallel_corpus",
    "sample",
    "split_pairs",
]

LANGUAGES = {"en": "web", "es": "sparv"}  # language -> attnkit.tasks.bible.BIBLES key
DIRECTIONS = ("en-es", "es-en")
NORMALIZATION = ("nfkc", "spaces")


@dataclass(frozen=True)
class VersePair:
    book: str
    chapter: int
    verse: int
    en: str
    es: str

    def side(self, lang: str) -> str:
        return self.en if lang == "en" else self.es


def align(
    first: Sequence,
    second: Sequence,
    first_scheme: dict[str, tuple],
    second_scheme: dict[str, tuple],
) -> tuple[list[tuple[Any, Any]], list[str]]:
    """Verses of two Bibles paired by reference: ((verse of first, verse of second) in the first's
    order, the books dropped because their schemes number them differently). A reference
    either Bible lacks (an empty verse) is left out; books only one Bible has are dropped
    silently (the deuterocanon of the WEB)."""
    same = {b for b, lengths in first_scheme.items() if second_scheme.get(b) == lengths}
    differ = sorted(b for b in first_scheme if b in second_scheme and b not in same)
    other = {(v.book, v.chapter, v.verse): v for v in second if v.book in same}
    pairs = [
        (v, other[key])
        for v in first
        if v.book in same
        if (key := (v.book, v.chapter, v.verse)) in other
    ]
    return pairs, differ


@dataclass
class ParallelCorpus:
    """Verse pairs by split, and where they came from."""

    train: list[VersePair]
    valid: list[VersePair]
    test: list[VersePair]
    source: dict[str, Any]


def split_pairs(pairs: Sequence[VersePair], source: dict[str, Any]) -> ParallelCorpus:
    """Train / validation / test by whole book (``bible.split_books``)."""
    from .bible import split_books

    train_b, valid_b, test_b = split_books([p.book for p in pairs])
    by = {
        b: s
        for s, books in (("train", train_b), ("valid", valid_b), ("test", test_b))
        for b in books
    }
    parts: dict[str, list[VersePair]] = {"train": [], "valid": [], "test": []}
    for p in pairs:
        parts[by[p.book]].append(p)
    source = {**source, "valid_books": valid_b, "test_books": test_b}
    return ParallelCorpus(parts["train"], parts["valid"], parts["test"], source)


def parallel_corpus() -> ParallelCorpus:
    """The English-Spanish verse pairs of the WEB and the RV 1909, split by book (the Debian
    packages are fetched if needed; see ``attnkit.tasks.debian``)."""
    from .bible import bible_versification, read_bible

    en, es = read_bible("web"), read_bible("sparv")
    matched, dropped = align(en, es, bible_versification("web"), bible_versification("sparv"))
    pairs = [VersePair(a.book, a.chapter, a.verse, a.text, b.text) for a, b in matched]
    source = {"corpus": "web-sparv", "pairs": len(pairs), "dropped_books": dropped}
    return split_pairs(pairs, source)


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """sacreBLEU's corpus BLEU and chrF of ``hypotheses`` against one reference each, with the
    signatures that say how they were computed."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    hyps, refs = list(hypotheses), [list(references)]
    b, c = bleu.corpus_score(hyps, refs), chrf.corpus_score(hyps, refs)
    return {
        "bleu": b.score,
        "chrf": c.score,
        "n": len(hyps),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


@register("translate")
class TranslationTask(PairTask):
    """A translation direction with subword vocabularies; scored by chrF (selection) and BLEU.

    ``from_pairs`` trains the source and target vocabularies on the (training) pairs given.
    Inputs are normalised (NFKC, spaces) and read as at most ``max_input_len`` subwords.
    """

    metrics: ClassVar[tuple[str, ...]] = ("chrf", "bleu")
    selection_metric: ClassVar[str] = "chrf"
    normalization: ClassVar[tuple[str, ...]] = NORMALIZATION
    unk_rate: ClassVar[float] = 0.0

    def __init__(
        self,
        src_vocab: SubwordVocab,
        tgt_vocab: SubwordVocab,
        max_input_len: int,
        normalize: Normalizer | None = None,
        direction: str = "en-es",
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        super().__init__(
            src_vocab,
            tgt_vocab,
            max_input_len,  # type: ignore[arg-type]
            normalize or Normalizer(NORMALIZATION),
        )
        self.direction = direction

    @property
    def languages(self) -> tuple[str, str]:
        src, tgt = self.direction.split("-")
        return src, tgt

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[str, str]],
        normalize=None,
        unknown_token: bool = False,
        *,
        vocab_size: int = 8000,
        direction: str = "en-es",
    ) -> TranslationTask:
        """Vocabularies trained on ``pairs`` (the training split); inputs up to twice the
        longest source in subwords (at least 256)."""
        if not pairs:
            raise ValueError("no pairs to build a task from")
        norm = Normalizer(NORMALIZATION if normalize is None else normalize)
        sources = [norm(s) for s, _ in pairs]
        src = SubwordVocab.train(sources, vocab_size)
        tgt = SubwordVocab.train([t for _, t in pairs], vocab_size)
        longest = max(len(src.encode(s)) for s in sources)
        return cls(src, tgt, max(256, 2 * longest), norm, direction)

    def input_problem(self, text: str) -> str | None:
        if not isinstance(text, str):
            return f"input must be a string, got {type(text).__name__}"
        if not text.strip():
            return "empty input" if not text else "input is only whitespace"
        n = len(self.src_vocab.encode(self.normalize(text)))
        if n > self.max_input_len:
            return f"input of {n} subwords is longer than this model's {self.max_input_len}"
        return None

    def evaluate(self, model: Any, data: PairDataset) -> dict[str, float]:
        """chrF, BLEU (sacreBLEU, corpus level) and the number of verses."""
        return self.score(data, self.decode_all(model, data, batch_size=128))

    def score(self, data: PairDataset, preds: list[str]) -> dict[str, float]:
        """chrF, BLEU and the number of verses of ``preds``, one per verse of ``data``."""
        scores = corpus_scores(preds, [t for _, t in data.pairs])
        return {k: v for k, v in scores.items() if k in ("bleu", "chrf", "n")}

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "direction": self.direction,
            "src_vocab": self.src_vocab.to_config(),
            "tgt_vocab": self.tgt_vocab.to_config(),
            "max_input_len": self.max_input_len,
            "normalize": self.normalizer.to_list(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TranslationTask:
        try:
            src, tgt = (
                SubwordVocab.from_config(config["src_vocab"]),
                SubwordVocab.from_config(config["tgt_vocab"]),
            )
            longest, direction = config["max_input_len"], config["direction"]
        except KeyError as err:
            raise ValueError(f"the task description lacks {err}") from None
        if not isinstance(longest, int) or isinstance(longest, bool) or longest < 1:
            raise ValueError(f"task max_input_len must be a positive int, got {longest!r}")
        steps = config.get("normalize", list(NORMALIZATION))
        if not isinstance(steps, list):
            raise ValueError("task normalize must be a list of steps")
        return cls(src, tgt, longest, Normalizer(steps), direction)


def sample(pairs: Sequence, k: int, seed: int = 0) -> list:
    """``k`` of ``pairs`` (all if fewer), chosen with ``seed``, in their original order."""
    if k >= len(pairs):
        return list(pairs)
    keep = sorted(random.Random(seed).sample(range(len(pairs)), k))
    return [pairs[i] for i in keep]


def as_pairs(verses: Iterable[VersePair], direction: str) -> list[tuple[str, str]]:
    """(source, target) strings of verse pairs in ``direction`` ("en-es" or "es-en")."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    src, tgt = direction.split("-")
    return [(v.side(src), v.side(tgt)) for v in verses]


def joined_verses(verses: Sequence[VersePair], fraction: float, seed: int = 0) -> list[VersePair]:
    """Extra training pairs made of two consecutive verses of one chapter, each language's
    texts joined with a space (sentence concatenation; Kondo et al. 2021). Verses are short
    (a median of 22 words in the training books) and long ones are rare, so a model sees few
    long inputs; joined pairs are real parallel text of twice the length. ``fraction`` of
    ``len(verses)`` pairs (at most one per verse that has a successor), chosen with ``seed``,
    in corpus order; each is labelled with its first verse's reference.

        >>> a = VersePair("Gen", 1, 1, "In the beginning.", "En el principio.")
        >>> b = VersePair("Gen", 1, 2, "The earth was empty.", "La tierra estaba vacía.")
        >>> joined_verses([a, b], 1.0)[0].en
        'In the beginning. The earth was empty.'
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"the fraction of joined verses must be in [0, 1], got {fraction}")
    starts = [
        i
        for i, (a, b) in enumerate(zip(verses[:-1], verses[1:], strict=True))
        if (a.book, a.chapter, a.verse + 1) == (b.book, b.chapter, b.verse)
    ]
    k = min(len(starts), round(fraction * len(verses)))
    chosen = sorted(random.Random(seed).sample(starts, k))
    return [
        VersePair(a.book, a.chapter, a.verse, f"{a.en} {b.en}", f"{a.es} {b.es}")
        for a, b in ((verses[i], verses[i + 1]) for i in chosen)
    ]
