"""Scoring a price-series experiment honestly: naive baselines, the metrics of each target, a
long/short P&L with a cost per trade, and bootstrap confidence intervals of differences.

Predictions are numpy arrays aligned with the test bars of a fold:

- classification targets (``fractal``: 0 none / 1 buy / 2 sell; ``direction``: 0 down / 1 up)
  give class probabilities (n, classes);
- the ``return`` target gives the predicted next-bar log return (n,).

A prediction at bar t takes a position for bar t -> t + 1: fractal buy +1, sell -1, none 0;
direction up +1, down -1; return its sign. The P&L of a bar is position x the next log return,
less ``cost`` (a fraction of the price) for every unit the position changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BASELINES",
    "PRIMARY",
    "Interval",
    "baseline",
    "bootstrap_interval",
    "metrics",
    "pnl",
    "positions",
]

BASELINES = {
    "fractal": ("always-none", "majority"),
    "direction": ("persistence", "majority"),
    "return": ("persistence", "zero"),
}
PRIMARY = {
    "fractal": ("balanced_accuracy", 1),
    "direction": ("accuracy", 1),
    "return": ("mse", -1),
}  # the metric that decides, and its sign: +1 higher is better, -1 lower


def baseline(
    name: str, kind: str, train_labels: np.ndarray, last_returns: np.ndarray, classes: int
) -> np.ndarray:
    """A naive prediction for each test bar: ``last_returns`` (n,) are the log returns of the
    bars themselves (known at prediction time); ``train_labels`` the fold's training labels.

    - "always-none": probability 1 on class 0 (no turning point);
    - "majority": the training labels' class frequencies, the same for every bar;
    - "persistence": the last move repeated (direction: up if the bar rose; return: the bar's
      own return);
    - "zero": a return of 0 (the random-walk forecast).
    """
    if name not in BASELINES.get(kind, ()):
        raise ValueError(f"baseline {name!r} is not one of {BASELINES.get(kind)} for {kind!r}")
    n = len(last_returns)
    if kind == "return":
        return np.zeros(n) if name == "zero" else np.asarray(last_returns, dtype=float).copy()
    probs = np.zeros((n, classes))
    if name == "always-none":
        probs[:, 0] = 1.0
    elif name == "majority":
        counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=classes)
        probs[:] = counts / max(counts.sum(), 1)
    else:  # persistence of the direction
        probs[np.arange(n), (np.asarray(last_returns) > 0).astype(np.int64)] = 1.0
    return probs


def positions(kind: str, prediction: np.ndarray) -> np.ndarray:
    """The position (-1, 0 or +1) each prediction takes for the next bar."""
    if kind == "return":
        return np.sign(prediction).astype(float)
    chosen = prediction.argmax(1)
    if kind == "direction":
        return np.where(chosen == 1, 1.0, -1.0)
    return np.select([chosen == 1, chosen == 2], [1.0, -1.0], 0.0)


def pnl(kind: str, prediction: np.ndarray, next_returns: np.ndarray, cost: float) -> np.ndarray:
    """Per-bar log P&L of trading every prediction, ``cost`` per unit of position change
    (entering from flat before the first bar counts)."""
    pos = positions(kind, prediction)
    turnover = np.abs(np.diff(np.concatenate([[0.0], pos])))
    return pos * np.asarray(next_returns, dtype=float) - cost * turnover


def metrics(
    kind: str, prediction: np.ndarray, truth: np.ndarray, next_returns: np.ndarray, cost: float
) -> dict[str, float]:
    """The metrics of one set of predictions against the true labels (and the P&L)."""
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    gains = pnl(kind, prediction, next_returns, cost)
    out["pnl"] = float(gains.sum())
    out["trades"] = float(
        np.abs(np.diff(np.concatenate([[0.0], positions(kind, prediction)]))).sum()
    )
    if kind == "return":
        truth = np.asarray(truth, dtype=float)
        out["mse"] = float(np.mean((prediction - truth) ** 2))
        out["mae"] = float(np.mean(np.abs(prediction - truth)))
        moved = truth != 0
        out["directional_accuracy"] = float(
            np.mean(np.sign(prediction[moved]) == np.sign(truth[moved])) if moved.any() else np.nan
        )
        return out
    classes = prediction.shape[1]
    chosen = prediction.argmax(1)
    labels = list(range(classes))
    out["accuracy"] = float(skm.accuracy_score(truth, chosen))
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(truth, chosen))
    out["macro_f1"] = float(
        skm.f1_score(truth, chosen, labels=labels, average="macro", zero_division=0)
    )
    out["auc"] = _auc(truth, prediction, labels)
    if kind == "fractal":  # the article's hit rate: right among the signals given
        signal, real = chosen != 0, truth != 0
        out["hit_rate"] = (
            float(np.mean(chosen[signal] == truth[signal])) if signal.any() else np.nan
        )
        out["missed_signals"] = (
            float(np.mean(chosen[real] != truth[real])) if real.any() else np.nan
        )
    return out


def _auc(truth: np.ndarray, probs: np.ndarray, labels: list[int]) -> float:
    """ROC AUC (one-vs-rest, macro over the classes present); NaN where undefined (one class
    only, or constant scores are fine: they give 0.5)."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(truth)
    if len(present) < 2:
        return float("nan")
    if len(labels) == 2:
        return float(roc_auc_score(truth, probs[:, 1]))
    scores = [roc_auc_score(truth == c, probs[:, c]) for c in present]
    return float(np.mean(scores))


@dataclass(frozen=True)
class Interval:
    """A difference (model - baseline) of a metric: its mean over the units and a bootstrap
    confidence interval of that mean."""

    mean: float
    low: float
    high: float
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_interval(
    differences: Sequence[float], level: float = 0.95, draws: int = 2000, seed: int = 0
) -> Interval:
    """Percentile bootstrap of the mean of ``differences`` (one per fold and seed: the units
    resampled with replacement)."""
    d = np.asarray([x for x in differences if np.isfinite(x)], dtype=float)
    if len(d) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(d.mean()), float(low), float(high), level)
