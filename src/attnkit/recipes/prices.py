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
from types import SimpleNamespace

import numpy as np

BASELINES = {
    "fractal": ("always-none", "majority"),
    "direction": ("persistence", "majority"),
    "return": ("persistence", "zero"),
}


def baseline(name: str, kind: str, train_labels: np.ndarray, last_returns: np.ndarray,
             classes: int) -> np.ndarray:  # fmt: skip
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


def metrics(kind: str, prediction: np.ndarray, truth: np.ndarray, next_returns: np.ndarray,
            cost: float) -> dict[str, float]:  # fmt: skip
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
    out["macro_f1"] = float(skm.f1_score(truth, chosen, labels=labels, average="macro",
                                         zero_division=0))  # fmt: skip
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


def bootstrap_interval(differences: Sequence[float], level: float = 0.95, draws: int = 2000,
                       seed: int = 0) -> Interval:  # fmt: skip
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


# ------------------------------------------------------------------------------ walk-forward


def windows(feats: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """(len(ends), window, F): the ``window`` feature rows ending at each bar of ``ends``."""
    ends = np.asarray(ends, dtype=np.int64)
    if len(ends) and ends.min() < window - 1:
        raise ValueError(f"a window of {window} bars cannot end at bar {int(ends.min())}")
    idx = ends[:, None] + np.arange(1 - window, 1)[None, :]
    return feats[idx]


@dataclass
class FoldData:
    """A fold's scaled training and test windows and their labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_ends: np.ndarray


def fold_data(feats: np.ndarray, labels: np.ndarray, fold, window: int) -> FoldData:
    """The windows of one :class:`~attnkit.tasks.prices.Fold`, standardised with the mean and
    scale of the feature rows the training windows cover (never a test bar)."""
    from sklearn.preprocessing import StandardScaler

    train_ends = np.arange(*fold.train)
    test_ends = np.arange(*fold.test)
    seen = feats[max(0, fold.train[0] - window + 1) : fold.train[1]]
    scaler = StandardScaler().fit(seen)
    scaled = scaler.transform(feats[: fold.test[1]]).astype(np.float32)
    return FoldData(windows(scaled, train_ends, window), labels[train_ends],
                    windows(scaled, test_ends, window), labels[test_ends], test_ends)  # fmt: skip


def fit_predict(name: str, data: FoldData, kind: str, classes: int, *, epochs: int = 8,
                batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                settings: dict | None = None):  # fmt: skip
    """Train registered model ``name`` on the fold's training windows (Adam, cross-entropy or
    MSE on returns in units of their training standard deviation) and predict its test
    windows: class probabilities (n, classes) or returns (n,). Returns (model, prediction)."""
    import torch

    from ..models import build

    torch.manual_seed(seed)
    features = data.x_train.shape[2]
    out = 1 if kind == "return" else classes
    model = build(name, {"features": features, "window": data.x_train.shape[1], "out": out,
                         **(settings or {})})  # fmt: skip
    x = torch.from_numpy(data.x_train)
    if kind == "return":
        scale = float(np.std(data.y_train)) or 1.0
        y = torch.from_numpy((data.y_train / scale).astype(np.float32))
    else:
        scale = 1.0
        y = torch.from_numpy(data.y_train.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=gen).split(batch_size):
            loss = model.loss(SimpleNamespace(x=x[rows], y=y[rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(data.x_test))
    if kind == "return":
        return model, scores[:, 0].double().numpy() * scale
    return model, torch.softmax(scores.double(), -1).numpy()


# ------------------------------------------------------------------------------ comparison

# what each model of a comparison is: a registered name and its settings
VARIANTS: dict[str, tuple[str, dict]] = {
    "attention": ("series-attention", {"num_heads": 1}),  # the article's block
    "attention-4h": ("series-attention", {"num_heads": 4}),
    "lstm": ("series-lstm", {}),
    "cnn": ("series-cnn", {}),
    "mlp": ("series-mlp", {}),
    "dlinear": ("series-linear", {}),
}
PRIMARY = {"fractal": ("balanced_accuracy", 1), "direction": ("accuracy", 1),
           "return": ("mse", -1)}  # metric, +1 higher is better / -1 lower  # fmt: skip


@dataclass
class Comparison:
    """Every model's and baseline's metrics per (fold, seed), and intervals (bootstrap over
    folds, each the mean over its seeds) of each model's difference from the best baseline
    (``best_baseline``, chosen by the primary metric over all test bars; baselines need no
    seed)."""

    kind: str
    scores: dict[str, list[dict[str, float]]]  # name -> one metrics dict per (fold, seed)
    units: dict[str, list[tuple[int, int]]]  # name -> its (fold, seed) units
    best_baseline: str
    intervals: dict[str, dict[str, Interval]]  # model -> metric -> Interval of the difference

    def beats_baseline(self, model: str) -> bool:
        """True only where the interval of the primary metric's difference lies wholly on the
        better side of 0."""
        metric, sign = PRIMARY[self.kind]
        iv = self.intervals[model][metric]
        return bool(iv.low > 0) if sign > 0 else bool(iv.high < 0)


def _fold_means(units, scores, base, key) -> list[float]:
    """A model's difference from the baseline per fold, averaged over its seeds: the seeds of
    one fold share their test bars, so the folds are the independent units to resample."""
    by_fold: dict[int, list[float]] = {}
    for (fold, _), s in zip(units, scores, strict=True):
        by_fold.setdefault(fold, []).append(s[key] - base[fold][key])
    return [float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            for v in by_fold.values()]  # fmt: skip


def compare(feats: np.ndarray, labels: np.ndarray, returns: np.ndarray, folds, kind: str, *,
            models: Sequence[str] = tuple(VARIANTS), seeds: Sequence[int] = (0, 1, 2),
            window: int = 20, epochs: int = 8, cost: float = 0.0, level: float = 0.95,
            rules: dict[str, np.ndarray] | None = None, progress=None) -> Comparison:  # fmt: skip
    """Walk-forward comparison: for each fold, the baselines once and every model of
    :data:`VARIANTS` named in ``models`` once per seed. ``returns[t]`` is the log return of
    bar t (close t-1 -> t); the next bar's return scores the P&L. ``rules`` are more naive
    baselines: a class per bar known at that bar (for the fractal target,
    :func:`~attnkit.tasks.prices.half_fractal`), scored like the others."""
    classes = {"fractal": 3, "direction": 2, "return": 1}[kind]
    unknown = [m for m in models if m not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; expected some of {', '.join(VARIANTS)}")
    scores: dict[str, list[dict[str, float]]] = {}
    units: dict[str, list[tuple[int, int]]] = {}
    pooled: dict[str, tuple[list, list, list]] = {}
    nxt = np.r_[returns[1:], np.nan]
    for f, fold in enumerate(folds):
        data = fold_data(feats, labels, fold, window)
        ends = data.test_ends
        naive = {name: baseline(name, kind, data.y_train, returns[ends], classes)
                 for name in BASELINES[kind]}  # fmt: skip
        for name, rule in (rules or {}).items():
            naive[name] = np.eye(classes)[np.asarray(rule)[ends]]
        for name, pred in naive.items():
            scores.setdefault(name, []).append(metrics(kind, pred, data.y_test, nxt[ends], cost))
            units.setdefault(name, []).append((f, 0))
            p = pooled.setdefault(name, ([], [], []))
            p[0].append(pred), p[1].append(data.y_test), p[2].append(nxt[ends])
        for model in models:
            registered, settings = VARIANTS[model]
            for seed in seeds:
                _, pred = fit_predict(registered, data, kind, classes, epochs=epochs, seed=seed,
                                      settings=settings)  # fmt: skip
                scores.setdefault(model, []).append(
                    metrics(kind, pred, data.y_test, nxt[ends], cost)
                )
                units.setdefault(model, []).append((f, seed))
                if progress is not None:
                    progress(f, model, seed)
    metric, sign = PRIMARY[kind]
    overall = {n: metrics(kind, np.concatenate(p[0]), np.concatenate(p[1]), np.concatenate(p[2]),
                          cost)[metric] for n, p in pooled.items()}  # fmt: skip
    best = max(overall, key=lambda n: sign * overall[n])
    intervals = {}
    base = {u[0]: s for u, s in zip(units[best], scores[best], strict=True)}
    for model in models:
        intervals[model] = {
            key: bootstrap_interval(_fold_means(units[model], scores[model], base, key), level)
            for key in scores[model][0]
        }
    return Comparison(kind, scores, units, best, intervals)


def compare_bars(bars, kind: str = "fractal", *, window: int = 20, train_size: int = 2000,
                 test_size: int = 500, expanding: bool = False,
                 **options) -> Comparison:  # fmt: skip
    """:func:`compare` on OHLCV ``bars`` (see :mod:`attnkit.tasks.prices`): their features
    and ``kind`` labels, walk-forward folds with the purge gap, and for the fractal target the
    half-fractal rule among the baselines. ``options`` go to :func:`compare`."""
    from ..tasks import prices as pr

    feats, labels = pr.features(bars), pr.targets(bars, kind)
    returns = np.r_[np.nan, np.diff(np.log(bars["close"].to_numpy(dtype=float)))]
    folds = list(pr.walk_forward(len(bars), start=pr.first_valid(feats) + window - 1,
                                 window=window, horizon=pr.TARGETS[kind],
                                 train_size=train_size, test_size=test_size,
                                 expanding=expanding))  # fmt: skip
    if kind == "fractal":
        options.setdefault("rules", {"half-fractal": pr.half_fractal(bars)})
    return compare(feats, labels, returns, folds, kind, window=window, **options)
