"""Metrics for string-to-string tasks."""

from __future__ import annotations

from collections.abc import Sequence


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Share of predictions equal to their target as whole strings (0..1)."""
    if not targets:
        return 0.0
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def char_accuracy(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Matching characters at aligned positions over max(len(pred), len(target)), pooled (0..1).

    Extra or missing characters count as errors, so only exact strings score 1.
    """
    hits = total = 0
    for p, t in zip(predictions, targets, strict=True):
        hits += sum(a == b for a, b in zip(p, t, strict=False))
        total += max(len(p), len(t), 1)
    return hits / total if total else 0.0
