"""String-pair data sets: encoding, batching and TSV files."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .vocab import CharVocab


class PairDataset(Dataset):
    """(input, target) string pairs, encoded once into padded tensors.

    ``src`` is (N, S) with lengths ``src_len``; ``tgt`` is (N, T+1), the target ids followed by
    end-of-sequence and padding. ``unk_rate`` > 0 (a vocabulary with an unknown id) replaces
    that share of input characters with the unknown id.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        src_vocab: CharVocab,
        tgt_vocab: CharVocab,
        unk_rate: float = 0.0,
    ) -> None:
        if not pairs:
            raise ValueError("the data set is empty")
        self.pairs = list(pairs)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        src = [src_vocab.encode(s) for s, _ in self.pairs]
        if unk_rate:  # a fixed few characters read as unknown, so the unknown id is learned
            rng = random.Random(len(src))
            src = [[src_vocab.unk_id if rng.random() < unk_rate else i for i in s] for s in src]
        tgt = [tgt_vocab.encode(t, eos=True) for _, t in self.pairs]
        self.src_len = torch.tensor([len(s) for s in src])
        self.src = padded(src, src_vocab.pad_id)
        self.tgt = padded(tgt, tgt_vocab.pad_id)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> PairBatch:
        return PairBatch(self.src[i], self.src_len[i], self.tgt[i])

    def batch(self, index: Tensor) -> PairBatch:
        """The examples ``index`` as one batch, trimmed to the longest input and target in it."""
        lengths = self.src_len[index]
        tgt = self.tgt[index]
        tgt_len = int((tgt != self.tgt_vocab.pad_id).sum(1).max())
        return PairBatch(self.src[index, : int(lengths.max())], lengths, tgt[:, :tgt_len])


class PairBatch(NamedTuple):
    """A batch of encoded pairs: src (B, S) padded ids, src_len (B,), tgt (B, T) target ids
    followed by end-of-sequence and padding."""

    src: Tensor
    src_len: Tensor
    tgt: Tensor


def padded(seqs: list[list[int]], pad_id: int) -> Tensor:
    """(len(seqs), longest) long ids: each sequence followed by ``pad_id``."""
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def split(pairs: list[tuple[str, str]], held_out: float, seed: int):
    """Shuffle with ``seed`` and split off a held-out share: (train, held_out).

    Repeated inputs are kept once, so no held-out input is ever seen in training.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}")
    pairs = list(dict(pairs).items())  # one pair per distinct input, first occurrence order
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 distinct inputs to split, got {len(pairs)}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(pairs) * held_out))
    return [pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]]


FORMATS = ("tsv", "csv", "json")


def _read_text(path: str | Path) -> tuple[Path, str]:
    if not str(path).strip():
        raise ValueError("the data file name is empty")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such data file: {path}")
    try:
        return path, path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not data
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}): {err.reason}") from None


def _format_of(path: Path, text: str) -> str:
    """tsv, csv or json: by extension, else by content (JSON starts with "[", a tab on the
    first line means TSV, otherwise CSV)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    head = text.lstrip()
    if head.startswith("["):
        return "json"
    return "tsv" if "\t" in head.split("\n", 1)[0] else "csv"


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(input, target) pairs from a TSV, CSV (two columns, a header row optional) or JSON file
    (a list of [input, target] pairs), told apart by extension or content.

    Raises ValueError naming the file, the line (or JSON item) and what is wrong.
    """
    return _read(path, None)


def read_tsv(path: str | Path) -> list[tuple[str, str]]:
    """Read ``input<TAB>target`` lines; blank lines are skipped.

    Raises ValueError naming the first malformed line.
    """
    return _read(path, "tsv")


def _read(path: str | Path, kind: str | None) -> list[tuple[str, str]]:
    """The pairs of a file in format ``kind`` (None: by extension or content)."""
    path, text = _read_text(path)
    parse = {"tsv": _tsv, "csv": _csv, "json": _json}[kind or _format_of(path, text)]
    pairs = parse(path, text)
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs


def _tsv(path: Path, text: str) -> list[tuple[str, str]]:
    pairs = []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 etc. are data
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1]:
            raise ValueError(f"{path}:{n}: expected 'input<TAB>target', got {line[:60]!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


# a first CSV row that names its columns (e.g. "input,target") is a header, not a pair
HEADER = (
    {"input", "source", "src", "text", "human", "x", "from", "question"},
    {"target", "output", "tgt", "label", "machine", "y", "to", "answer", "translation"},
)


def _csv(path: Path, text: str) -> list[tuple[str, str]]:
    import csv
    import io

    pairs = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            n = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 or not row[0].strip() or not row[1]:
                raise ValueError(
                    f"{path}:{n}: expected two columns 'input,target', got {len(row)} "
                    f"column(s): {','.join(row)[:60]!r}"
                )
            names = [c.strip().lower() for c in row]
            if not pairs and n == 1 and names[0] in HEADER[0] and names[1] in HEADER[1]:
                continue  # a header row
            pairs.append((row[0], row[1]))
    except csv.Error as err:
        raise ValueError(f"{path}:{reader.line_num}: malformed CSV: {err}") from None
    return pairs


def _json(path: Path, text: str) -> list[tuple[str, str]]:
    import json

    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(items, list):
        raise ValueError(
            f"{path}: expected a JSON list of [input, target] pairs, got {type(items).__name__}"
        )
    pairs = []
    for i, item in enumerate(items):
        ok = isinstance(item, list | tuple) and len(item) == 2
        if not ok or not all(isinstance(x, str) for x in item) or not item[0].strip():
            raise ValueError(
                f"{path}: item {i} is not an [input, target] pair of strings: {str(item)[:60]}"
            )
        pairs.append((item[0], item[1]))
    return pairs


def write_tsv(path: str | Path, pairs: Sequence[tuple[str, str]]) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for a, b in pairs:
            f.write(f"{a}\t{b}\n")
