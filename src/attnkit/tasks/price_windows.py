"""Windows of a price series as the trainer reads them: the windows ending at chosen bars, the
feature scaler fit on training rows only, the (train, valid, test) split of one training run,
and the trainer's data set and task.

A window ending at bar t holds the feature rows t - window + 1 .. t (features are causal, see
:mod:`attnkit.tasks.prices`); its label is the target of bar t. Every split keeps a purge gap
of window + horizon bars from the next, as the walk-forward folds do.

    >>> from attnkit.tasks import price_windows as pw
    >>> pw.split_ends(1000, start=40, window=20, horizon=2)
    ((40, 680), (702, 839), (861, 998))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from . import price_scores as ps
from .base import register
from .prices import Fold, PricesError, outputs

__all__ = [
    "BALANCED",
    "FoldData",
    "PriceTask",
    "Windows",
    "class_weights",
    "fit_scaler",
    "fold_data",
    "split_ends",
    "standardise",
    "windows",
]

# targets scored by balanced accuracy train with classes weighted inversely to their frequency:
# a model fit to plain cross-entropy on 1 turning point in 6 bars learns to say "none"
BALANCED = ("fractal",)


def windows(feats: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """(len(ends), window, F): the ``window`` feature rows ending at each bar of ``ends``."""
    ends = np.asarray(ends, dtype=np.int64)
    if len(ends) and ends.min() < window - 1:
        raise ValueError(f"a window of {window} bars cannot end at bar {int(ends.min())}")
    idx = ends[:, None] + np.arange(1 - window, 1)[None, :]  # (n, window) row numbers
    return feats[idx]


def fit_scaler(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of each feature column over ``rows`` (scikit-learn's StandardScaler: a
    constant column gets scale 1)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.asarray(rows, dtype=np.float64))
    return scaler.mean_, scaler.scale_


def standardise(feats: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(feats - mean) / scale in float64, as float32: the same numbers wherever it runs."""
    return ((np.asarray(feats, dtype=np.float64) - mean) / scale).astype(np.float32)


def scaler_rows(feats: np.ndarray, train: tuple[int, int], window: int) -> np.ndarray:
    """The feature rows the training windows ending at ``train`` (start, stop) cover: the only
    rows a scaler may see (never a test bar)."""
    return feats[max(0, train[0] - window + 1) : train[1]]


@dataclass
class FoldData:
    """A fold's scaled training and test windows and their labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_ends: np.ndarray


def fold_data(feats: np.ndarray, labels: np.ndarray, fold: Fold, window: int) -> FoldData:
    """The windows of one :class:`~attnkit.tasks.prices.Fold`, standardised with the mean and
    scale of the feature rows the training windows cover."""
    train_ends = np.arange(*fold.train)
    test_ends = np.arange(*fold.test)
    scaled = standardise(feats[: fold.test[1]], *fit_scaler(scaler_rows(feats, fold.train, window)))
    return FoldData(
        windows(scaled, train_ends, window),
        labels[train_ends],
        windows(scaled, test_ends, window),
        labels[test_ends],
        test_ends,
    )


def split_ends(
    n: int, *, start: int, window: int, horizon: int, valid: float = 0.15, test: float = 0.15
) -> tuple[tuple[int, int], ...]:
    """(train, valid, test) ranges of window ends over bars ``start``..n - horizon - 1, in
    time order, each separated from the next by a purge gap of window + horizon bars."""
    gap = window + horizon
    last = n - horizon
    usable = last - start - 2 * gap
    n_test, n_valid = math.floor(usable * test), math.floor(usable * valid)
    n_train = usable - n_test - n_valid
    if min(n_train, n_valid, n_test) < 1:
        raise PricesError(
            f"{n} bars are too few to split into training, validation and test "
            f"windows of {window} bars with purge gaps of {gap}"
        )
    a = (start, start + n_train)
    b = (a[1] + gap, a[1] + gap + n_valid)
    return a, b, (b[1] + gap, last)


def class_weights(labels: np.ndarray, classes: int) -> torch.Tensor:
    """(classes,) float32 tensor: n / (classes x count) per class present, 0 for absent ones."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


class Windows:
    """Windows (n, window, F) and their labels as the trainer's data set (``len``, ``batch``).

    A return target is divided by ``scale`` (the training returns' standard deviation), so the
    loss is in units the optimiser handles alike for every series; the targets of
    :data:`BALANCED` carry class weights from the training labels (``weights``)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        kind: str,
        scale: float = 1.0,
        weights: torch.Tensor | None = None,
    ) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x))
        if kind == "return":
            self.y = torch.from_numpy((np.asarray(y) / scale).astype(np.float32))
        else:
            self.y = torch.from_numpy(np.asarray(y).astype(np.int64))
        self.scale, self.weights = scale, weights

    @classmethod
    def for_training(cls, x: np.ndarray, y: np.ndarray, kind: str) -> Windows:
        """The training windows of target ``kind``, their return scale and class weights taken
        from ``y`` itself."""
        scale = return_scale(y) if kind == "return" else 1.0
        weights = class_weights(y, outputs(kind)) if kind in BALANCED else None
        return cls(x, y, kind, scale, weights)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, rows) -> SimpleNamespace:
        return SimpleNamespace(x=self.x[rows], y=self.y[rows], class_weights=self.weights)


def return_scale(returns: np.ndarray) -> float:
    """The standard deviation of training returns, the unit of a return model's outputs (1 for
    a series that never moved)."""
    return float(np.std(returns)) or 1.0


def scores_of(model: nn.Module, x: torch.Tensor, kind: str, scale: float = 1.0) -> np.ndarray:
    """A model's predictions of windows ``x``: class probabilities (n, classes) or returns (n,)
    in the series' own units, in float64."""
    from ..train.devices import device_of  # the trainer's extras: only when used

    model.eval()
    with torch.no_grad():
        scores = model(x.to(device_of(model))).double().cpu()
    if kind == "return":
        return scores[:, 0].numpy() * scale
    return torch.softmax(scores, -1).numpy()


@register("prices")
class PriceTask:
    """The trainer's task of a price model: validation loss selects the epoch (lower is
    better); the target's primary metric (:data:`~attnkit.tasks.price_scores.PRIMARY`) is
    shown beside it. ``truth`` and ``next_returns`` belong to the held-out windows."""

    selection_metric = "valid_loss"
    lower_is_better = True

    def __init__(self, kind: str, truth: np.ndarray, next_returns: np.ndarray) -> None:
        self.kind, self.truth, self.next_returns = kind, truth, next_returns

    def evaluate(self, model: nn.Module, held: Windows) -> dict[str, float]:
        from ..train.devices import device_of, to_device

        model.eval()
        with torch.no_grad():
            loss = float(model.loss(to_device(held.batch(slice(None)), device_of(model))))
        pred = scores_of(model, held.x, self.kind, held.scale)
        model.train()
        metric = ps.PRIMARY[self.kind][0]
        value = ps.metrics(self.kind, pred, self.truth, self.next_returns, 0.0)[metric]
        return {"valid_loss": loss, metric: value}
