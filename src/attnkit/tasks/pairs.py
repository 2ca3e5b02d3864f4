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
    end-of-sequence and padding.
    """

    def __init__(
        self, pairs: Sequence[tuple[str, str]], src_vocab: CharVocab, tgt_vocab: CharVocab
    ) -> None:
        if not pairs:
            raise ValueError("the data set is empty")
        self.pairs = list(pairs)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        src = [src_vocab.encode(s) for s, _ in self.pairs]
        tgt = [tgt_vocab.encode(t, eos=True) for _, t in self.pairs]
        self.src_len = torch.tensor([len(s) for s in src])
        self.src = _pad(src, src_vocab.pad_id)
        self.tgt = _pad(tgt, tgt_vocab.pad_id)

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


def _pad(seqs: list[list[int]], pad_id: int) -> Tensor:
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


def read_tsv(path: str | Path) -> list[tuple[str, str]]:
    """Read ``input<TAB>target`` lines; blank lines are skipped.

    Raises ValueError naming the first malformed line.
    """
    if not str(path).strip():
        raise ValueError("the data file name is empty")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such data file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not data
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}): {err.reason}") from None
    pairs = []
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 etc. are data
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1]:
            raise ValueError(f"{path}:{n}: expected 'input<TAB>target', got {line[:60]!r}")
        pairs.append((parts[0], parts[1]))
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs


def write_tsv(path: str | Path, pairs: Sequence[tuple[str, str]]) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for a, b in pairs:
            f.write(f"{a}\t{b}\n")
