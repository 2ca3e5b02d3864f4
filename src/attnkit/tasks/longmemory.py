"""The long-term memory problems of Hochreiter & Schmidhuber 1997 as Raffel & Ellis 2015
(arXiv:1512.08756) posed them to feed-forward attention: "add" and "multiply".

Each sequence has a length drawn uniformly from [T, 1.1 T) and two channels per step:

- channel 0, the values: uniform in [-1, 1] (add) or [0, 1] (multiply);
- channel 1, the markers: -1 at the first and the last step, 1 at the two steps whose values
  are combined, 0 elsewhere. The first marked step lies in the first 10% of the sequence
  (never the first step), the second in the second half (never the last step), so an answer
  needs both ends of the sequence.

The target is 0.5 + (x1 + x2) / 4 (add) or x1 * x2 (multiply), both in [0, 1]; a prediction
counts as correct when its absolute error is below 0.04.

    >>> batch = make_batch("add", 4, 100, generator=torch.Generator().manual_seed(0))
    >>> batch.x.shape[0], bool((batch.lengths >= 100).all() and (batch.lengths < 110).all())
    (4, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import register

__all__ = [
    "PROBLEMS",
    "TOLERANCE",
    "LongMemoryBatch",
    "LongMemoryTask",
    "Sequences",
    "make_batch",
]

PROBLEMS = ("add", "multiply")
TOLERANCE = 0.04  # |error| below this counts as correct (Raffel & Ellis, after Hochreiter)


@dataclass
class LongMemoryBatch:
    """x (B, L, 2) padded with zeros after each sequence's length; lengths (B,); y (B,);
    marked (B, 2) the two steps whose values make the target."""

    x: Tensor
    lengths: Tensor
    y: Tensor
    marked: Tensor


def make_batch(
    problem: str, batch: int, length: int, *, generator: torch.Generator | None = None
) -> LongMemoryBatch:
    """A batch of the ``problem`` ("add" or "multiply") with lengths in [length, 1.1 length)."""
    if problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; expected one of {', '.join(PROBLEMS)}")
    if length < 4 or batch < 1:
        raise ValueError(f"need length >= 4 and batch >= 1, got {length} and {batch}")
    g = generator
    span = max(1, -(-length // 10))  # 1.1 T is exclusive: lengths T .. ceil(1.1 T) - 1
    lengths = length + torch.randint(0, span, (batch,), generator=g)
    longest = int(lengths.max())
    low = -1.0 if problem == "add" else 0.0
    values = low + (1.0 - low) * torch.rand(batch, longest, generator=g)
    steps = torch.arange(longest)
    real = steps[None, :] < lengths[:, None]
    values = values * real
    # first marked step in 1 .. max(1, L // 10) - 1 (inside the first 10%, after the -1 marker)
    first_end = torch.clamp(lengths // 10, min=2)
    first = 1 + (torch.rand(batch, generator=g) * (first_end - 1)).long()
    # second in L // 2 .. L - 2 (the second half, before the last -1 marker)
    second_start = lengths // 2
    second = second_start + (torch.rand(batch, generator=g) * (lengths - 1 - second_start)).long()
    markers = torch.zeros(batch, longest)
    rows = torch.arange(batch)
    markers[rows, 0] = -1.0
    markers[rows, lengths - 1] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x1, x2 = values[rows, first], values[rows, second]
    y = 0.5 + (x1 + x2) / 4 if problem == "add" else x1 * x2
    x = torch.stack([values, markers], -1)
    return LongMemoryBatch(x, lengths, y, torch.stack([first, second], 1))


class Sequences:
    """A fixed set of sequences as the trainer's data set (``len``, ``batch``): generated in
    chunks of ``chunk`` by :func:`make_batch`, so a set drawn from a generator holds the same
    sequences as the chunks drawn from it one by one."""

    def __init__(
        self,
        problem: str,
        n: int,
        length: int,
        *,
        chunk: int = 100,
        generator: torch.Generator | None = None,
    ) -> None:
        if n < 1 or chunk < 1:
            raise ValueError(f"need n >= 1 and chunk >= 1, got {n} and {chunk}")
        parts = [
            make_batch(problem, min(chunk, n - start), length, generator=generator)
            for start in range(0, n, chunk)
        ]
        longest = max(p.x.shape[1] for p in parts)
        pad = lambda x: nn.functional.pad(x, (0, 0, 0, longest - x.shape[1]))  # noqa: E731
        self.problem, self.chunk = problem, chunk
        self.x = torch.cat([pad(p.x) for p in parts])  # (n, longest, 2), zeros past each end
        self.lengths = torch.cat([p.lengths for p in parts])
        self.y = torch.cat([p.y for p in parts])
        self.marked = torch.cat([p.marked for p in parts])

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, rows) -> LongMemoryBatch:
        """The sequences ``rows``, padded to the longest of them only."""
        lengths = self.lengths[rows]
        longest = int(lengths.max())
        return LongMemoryBatch(self.x[rows, :longest], lengths, self.y[rows], self.marked[rows])


@register("longmemory")
class LongMemoryTask:
    """The trainer's task of a long-memory problem: the share of held-out sequences answered
    within :data:`TOLERANCE` selects (``correct``, 1.0 solves the problem); the worst absolute
    error is shown beside it. Scored in the set's chunks, as they were drawn."""

    selection_metric = "correct"

    def evaluate(self, model: nn.Module, held: Sequences) -> dict[str, float]:
        model.eval()
        errors = []
        with torch.no_grad():
            for rows in torch.arange(len(held)).split(held.chunk):
                b = held.batch(rows)
                errors.append((model(b.x, b.lengths) - b.y).abs())
        model.train()
        err = torch.cat(errors)
        return {"correct": float((err < TOLERANCE).float().mean()), "worst_error": float(err.max())}
