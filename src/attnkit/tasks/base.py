"""Tasks: what a model learns, as data sets with a vocabulary and metrics.

The trainer needs three things of a task (``attnkit.train.fit``):

- data sets with ``len(data)`` and ``data.batch(indices)``, the batch that ``model.loss`` takes;
- ``task.evaluate(model, data) -> dict`` of metrics, in which ``task.selection_metric`` (higher
  is better) picks the best epoch;
- ``task.to_config()``, a JSON-able description (vocabularies included) that a checkpoint keeps
  and ``attnkit.tasks.from_config`` reads back.

Tasks are registered by name (:func:`register`); the command line lists them
(``attnkit train TASK``). :class:`PairTask` is the string-to-string kind (dates, times, a TSV
file of pairs); the other kinds (language models, translation, text classification, captions)
are registered the same way, whatever their batch type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from .metrics import char_accuracy, exact_match
from .normalize import Normalizer, steps_for
from .pairs import PairDataset, padded
from .vocab import CharVocab

__all__ = ["PairTask", "from_config", "get", "names", "register"]

_TASKS: dict[str, type[Any]] = {}  # any task class: pairs, text, captions, ...


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a task class available as ``get(name)`` and to the command line."""

    def decorate(cls: type) -> type:
        cls.name = name
        _TASKS[name] = cls
        return cls

    return decorate


def names() -> list[str]:
    """The registered task names that generate their own data, sorted."""
    return sorted(n for n, cls in _TASKS.items() if getattr(cls, "default_n", None) is not None)


def get(name: str) -> type[Any]:
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def from_config(config: Any) -> Any:
    """The task a checkpoint describes (``task.to_config()``); ValueError if malformed."""
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ValueError("the task description must be an object with a 'name'")
    return get(config["name"]).from_config(config)


@register("pairs")
class PairTask:
    """A string-to-string task: read a string, write a string, one character at a time.

    Holds the source and target vocabularies and the longest input the model is meant to read.
    The metrics are exact match (whole strings; the selection metric) and character accuracy.
    This base class serves any list of pairs, e.g. a TSV file; registered subclasses generate
    their own pairs (``generate(n, seed)``) and document one example worked through.

    Every input is normalised (``attnkit.tasks.normalize``) before it is encoded, with the steps
    the task was built with: a subclass's ``normalization``, or for a file of pairs the steps
    that leave its inputs unchanged. With ``unknown_token`` the source vocabulary has an id for
    characters it never saw (training replaces a few characters with it, so that it is learned);
    without, such characters make an input unreadable.

    Example:
        >>> task = PairTask.from_pairs([("ab", "AB"), ("ba", "BA")])
        >>> data = task.dataset([("ab", "AB")])
        >>> batch = data.batch(torch.tensor([0]))
        >>> batch.src.tolist(), batch.tgt.tolist()  # ids: a=3, b=4; A=3, B=4, then </s>=2
        ([[3, 4]], [[3, 4, 2]])
    """

    name: ClassVar[str]
    default_n: ClassVar[int | None] = None  # pairs to generate; None: the user brings data
    metrics: ClassVar[tuple[str, ...]] = ("exact_match", "char_accuracy")
    selection_metric: ClassVar[str] = "exact_match"
    normalization: ClassVar[tuple[str, ...] | None] = None  # None: chosen from the data
    unk_rate: ClassVar[float] = 0.01  # training characters read as unknown, with unknown_token

    def __init__(
        self,
        src_vocab: CharVocab,
        tgt_vocab: CharVocab,
        max_input_len: int,
        normalize: Normalizer | None = None,
    ) -> None:
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.max_input_len = max_input_len
        self.normalizer = normalize or Normalizer()

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[str, str]],
        normalize: Sequence[str] | None = None,
        unknown_token: bool = False,
    ) -> PairTask:
        """Vocabularies from every (normalised) pair; inputs up to twice the longest seen.
        ``normalize`` names the steps (default: the class's, or those the inputs already
        satisfy)."""
        if not pairs:
            raise ValueError("no pairs to build a task from")
        if normalize is None:
            normalize = cls.normalization
        if normalize is None:
            normalize = steps_for([s for s, _ in pairs])
        norm = Normalizer(normalize)
        inputs = [norm(s) for s, _ in pairs]
        return cls(
            CharVocab.from_texts(inputs, unk=unknown_token),
            CharVocab.from_texts(t for _, t in pairs),
            2 * max(map(len, inputs)),
            norm,
        )

    def normalize(self, text: str) -> str:
        """``text`` as the model reads it (the task's normalisation applied)."""
        return self.normalizer(text)

    @staticmethod
    def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
        raise ValueError("this task has no generator: give it pairs (e.g. a TSV file)")

    def dataset(self, pairs: Sequence[tuple[str, str]], train: bool = False) -> PairDataset:
        """The pairs encoded, inputs normalised; a ``train`` set of a task with an unknown token
        has a few characters (``unk_rate``, fixed by a seed) replaced by it."""
        norm = [(self.normalize(s), t) for s, t in pairs]
        rate = self.unk_rate if train and self.src_vocab.unk_id is not None else 0.0
        return PairDataset(norm, self.src_vocab, self.tgt_vocab, unk_rate=rate)

    # -- checkpoints ----------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "src_vocab": self.src_vocab.to_list(),
            "tgt_vocab": self.tgt_vocab.to_list(),
            "max_input_len": self.max_input_len,
            "normalize": self.normalizer.to_list(),
            "unknown_token": self.src_vocab.unk_id is not None,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PairTask:
        try:
            src, tgt, longest = config["src_vocab"], config["tgt_vocab"], config["max_input_len"]
        except KeyError as err:
            raise ValueError(f"the task description lacks {err}") from None
        for key, value in (("src_vocab", src), ("tgt_vocab", tgt)):
            if not isinstance(value, list) or not all(
                isinstance(c, str) and len(c) == 1 for c in value
            ):
                raise ValueError(f"task {key} must be a list of single characters")
            if len(set(value)) != len(value):
                raise ValueError(f"task {key} lists a character twice")
        if not isinstance(longest, int) or isinstance(longest, bool) or longest < 1:
            raise ValueError(f"task max_input_len must be a positive int, got {longest!r}")
        steps, unk = config.get("normalize", []), config.get("unknown_token", False)
        if not isinstance(steps, list) or not isinstance(unk, bool):
            raise ValueError("task normalize must be a list of steps and unknown_token a bool")
        return cls(
            CharVocab.from_list(src, unk), CharVocab.from_list(tgt), longest, Normalizer(steps)
        )

    # -- what a model makes of it ---------------------------------------------------------------
    def input_problem(self, text: str) -> str | None:
        """Why the model cannot read ``text`` (empty, too long, unknown characters), or None."""
        if not isinstance(text, str):
            return f"input must be a string, got {type(text).__name__}"
        if not text.strip():
            return "empty input" if not text else "input is only whitespace"
        given, text = text, self.normalize(text)
        if not text:
            return "input is empty once normalised"
        if len(text) > self.max_input_len:
            return (
                f"input of {len(text)} characters is longer than this model's {self.max_input_len}"
            )
        unknown = self.src_vocab.unknown(text)
        if unknown:
            shown = ", ".join(map(repr, unknown))
            return f"input {given!r} has characters the model never saw: {shown}"
        return None

    def decode_all(self, model: Any, data: PairDataset, batch_size: int = 512) -> list[str]:
        """Greedy outputs for every example of ``data``, in order."""
        return self.predict_rows(model, data, range(len(data)), batch_size)

    def predict_rows(
        self,
        model: Any,
        data: PairDataset,
        rows,
        batch_size: int = 512,
    ) -> list[str]:
        """Greedy outputs for the examples ``rows`` of ``data``, in that order."""
        from ..models.decoding import greedy
        from ..train.devices import device_of, to_device

        model.eval()
        device = device_of(model)
        rows = torch.as_tensor(list(rows), dtype=torch.long)
        order = torch.argsort(data.src_len[rows], stable=True)  # similar lengths together
        out: list[str] = [""] * len(rows)
        with torch.no_grad():
            for at in order.split(batch_size):  # positions in rows
                batch = to_device(data.batch(rows[at]), device)
                seqs = greedy(model, batch.src, batch.src_len).ids
                for k, s in zip(at.tolist(), seqs, strict=True):
                    out[k] = self.tgt_vocab.decode(s)
        return out

    def evaluate(self, model: Any, data: PairDataset) -> dict[str, float]:
        """Exact match, character accuracy and the number of examples."""
        return self.score(data, self.decode_all(model, data))

    def score(self, data: PairDataset, preds: list[str]) -> dict[str, float]:
        """The metrics of ``preds``, one output per example of ``data`` in order."""
        targets = [t for _, t in data.pairs]
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} outputs for {len(targets)} examples")
        return {
            "exact_match": exact_match(preds, targets),
            "char_accuracy": char_accuracy(preds, targets),
            "n": len(targets),
        }

    def decode_one(
        self, model: Any, text: str, beam: int = 1
    ) -> tuple[list[int], list[int], Tensor]:
        """(input ids as the model read them, output ids, weights (steps, len(input ids))) of
        one text, greedy or with a beam; a row per step, the end of sequence's included when
        decoding ended before the length limit. ValueError for a text the model cannot read."""
        return self.decode_many(model, [text], beam)[0]

    def decode_many(
        self, model: Any, texts: Sequence[str], beam: int = 1, batch_size: int = 64
    ) -> list[tuple[list[int], list[int], Tensor]]:
        """:meth:`decode_one` of every text, in order, decoded in batches of ``batch_size``
        texts of similar length (a beam of W gives each text W rows of the batch). Every text
        is checked before any is decoded: ValueError names the first the model cannot read."""
        from ..models.decoding import beam_search, greedy
        from ..train.devices import device_of

        encoded = []
        for i, text in enumerate(texts):
            problem = self.input_problem(text)
            if problem:
                raise ValueError(problem if len(texts) == 1 else f"text {i + 1}: {problem}")
            encoded.append(self.src_vocab.encode(self.normalize(text)))
        model.eval()
        device = device_of(model)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        results: list[Any] = [None] * len(encoded)
        for at in range(0, len(order), batch_size):
            chunk = order[at : at + batch_size]
            src = padded([encoded[i] for i in chunk], self.src_vocab.pad_id).to(device)
            src_len = torch.tensor([len(encoded[i]) for i in chunk], device=device)
            out = (
                beam_search(model, src, src_len, beam) if beam > 1 else greedy(model, src, src_len)
            )
            for row, i in enumerate(chunk):
                ids, weights = out.ids[row], out.weights[row].cpu()
                # rows past the last one belong to longer outputs of the batch
                steps = len(ids) + (1 if weights.shape[0] > len(ids) else 0)
                results[i] = (encoded[i], ids, weights[:steps, : len(encoded[i])])
        return results

    def predict(self, model: Any, texts: Iterable[str], beam: int = 1) -> list[tuple[str, Tensor]]:
        """(output, weights (len(output) + 1, len(normalize(text)))) per input text: one weight
        row per output character and one for the end of sequence (fewer when decoding ran to the
        length limit without ending), one column per character of the input as the model read
        it. Raises ValueError for a text the model cannot read."""
        results = []
        for _, ids, weights in self.decode_many(model, list(texts), beam):
            # one row per character written (special ids write none) and the end, if it came
            rows = [t for t, i in enumerate(ids) if self.tgt_vocab.decode([i])]
            rows += [len(ids)] if weights.shape[0] > len(ids) else []
            results.append((self.tgt_vocab.decode(ids), weights[rows]))
        return results
