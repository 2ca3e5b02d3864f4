"""``attnkit repro raffel``: Raffel & Ellis 2015 (arXiv:1512.08756), feed-forward attention on
the long-term memory problems, by the paper's protocol.

A :class:`~attnkit.models.RaffelEllis` network (Dense(100) per step, pooling, Dense(100),
Dense(1)) trains with Adam on batches of 100 fresh sequences of lengths in [T, 1.1 T); every
1,000 batches it is tested on 1,000 fresh sequences, and the problem is *solved* at the first
test where every one of them has an absolute error below 0.04. The table gives the batches
each pooling needed per T (the shape of the paper's Table 1), or that it did not solve within
the budget.

    >>> r = solve("add", 10, "attention", max_batches=20, test_every=10, test_size=50)
    >>> r.batches is None or r.batches in (10, 20), r.tests
    (True, 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..models import RaffelConfig, RaffelEllis
from ..tasks.longmemory import PROBLEMS, TOLERANCE, LongMemoryTask, Sequences, make_batch

__all__ = ["Result", "solve", "table"]

BATCH, TEST_EVERY, TEST_SIZE = 100, 1000, 1000
LR = 1e-3


@dataclass
class Result:
    """One run: batches to solve (None: not within ``budget``), tests made, the last test's
    worst absolute error and share of correct sequences, and seconds taken."""

    problem: str
    length: int
    pooling: str
    batches: int | None
    budget: int
    tests: int
    worst_error: float
    correct: float
    seconds: float


def solve(
    problem: str,
    length: int,
    pooling: str = "attention",
    *,
    max_batches: int = 10_000,
    seed: int = 0,
    test_every: int = TEST_EVERY,
    test_size: int = TEST_SIZE,
    hidden_dim: int = 100,
    lr: float = LR,
    progress: Callable[[int, float], None] | None = None,
) -> Result:
    """Train until solved or ``max_batches``; ``progress(batches, worst error)`` after each
    test."""
    if problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}; expected one of {', '.join(PROBLEMS)}")
    if max_batches < 1 or test_every < 1 or test_size < 1:
        raise ValueError("max_batches, test_every and test_size must be >= 1")
    torch.manual_seed(seed)
    model = RaffelEllis(RaffelConfig(hidden_dim=hidden_dim, pooling=pooling))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    train_gen = torch.Generator().manual_seed(seed)
    test_gen = torch.Generator().manual_seed(10_000 + seed)  # fresh test sequences each time
    started = time.perf_counter()
    worst, correct, tests = float("nan"), float("nan"), 0
    for step in range(1, max_batches + 1):
        batch = make_batch(problem, BATCH, length, generator=train_gen)
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % test_every and step != max_batches:
            continue
        worst, correct = _test(model, problem, length, test_size, test_gen)
        tests += 1
        if progress is not None:
            progress(step, worst)
        if worst < TOLERANCE:
            return Result(
                problem,
                length,
                pooling,
                step,
                max_batches,
                tests,
                worst,
                correct,
                time.perf_counter() - started,
            )
    return Result(
        problem,
        length,
        pooling,
        None,
        max_batches,
        tests,
        worst,
        correct,
        time.perf_counter() - started,
    )


def _test(model, problem, length, size, gen) -> tuple[float, float]:
    """(worst absolute error, share below the tolerance) on ``size`` fresh sequences, scored
    in chunks of a training batch."""
    scores = LongMemoryTask().evaluate(
        model, Sequences(problem, size, length, chunk=BATCH, generator=gen)
    )
    return scores["worst_error"], scores["correct"]


def table(results: Sequence[Result]) -> str:
    """Batches to solve per problem and T (rows) and pooling (columns), as Markdown."""
    poolings = list(dict.fromkeys(r.pooling for r in results))
    rows = list(dict.fromkeys((r.problem, r.length) for r in results))
    cell = {(r.problem, r.length, r.pooling): r for r in results}
    lines = ["| problem | T | " + " | ".join(poolings) + " |", "|---|---|" + "---|" * len(poolings)]
    for problem, length in rows:
        cells = []
        for p in poolings:
            r = cell.get((problem, length, p))
            if r is None:
                cells.append("")
            elif r.batches is None:
                cells.append(
                    f"not solved in {r.budget:,} (worst error {r.worst_error:.3f}, "
                    f"{r.correct:.1%} correct; {r.seconds:.0f} s)"
                )
            else:
                cells.append(f"**{r.batches:,}** ({r.seconds:.0f} s)")
        lines.append(f"| {problem} | {length:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
