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
from dataclasses import dataclass, field
from functools import cached_property
from types import SimpleNamespace

import numpy as np

BASELINES = {
    "fractal": ("always-none", "majority"),
    "direction": ("persistence", "majority"),
    "return": ("persistence", "zero"),
}


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


# ------------------------------------------------------------------------------ walk-forward


def windows(feats: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """(len(ends), window, F): the ``window`` feature rows ending at each bar of ``ends``."""
    ends = np.asarray(ends, dtype=np.int64)
    if len(ends) and ends.min() < window - 1:
        raise ValueError(f"a window of {window} bars cannot end at bar {int(ends.min())}")
    idx = ends[:, None] + np.arange(1 - window, 1)[None, :]
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
    train_ends = np.arange(*fold.train)
    test_ends = np.arange(*fold.test)
    scaler = fit_scaler(feats[max(0, fold.train[0] - window + 1) : fold.train[1]])
    scaled = standardise(feats[: fold.test[1]], *scaler)
    return FoldData(
        windows(scaled, train_ends, window),
        labels[train_ends],
        windows(scaled, test_ends, window),
        labels[test_ends],
        test_ends,
    )


# targets scored by balanced accuracy train with classes weighted inversely to their frequency:
# a model fit to plain cross-entropy on 1 turning point in 6 bars learns to say "none"
BALANCED = ("fractal",)


def class_weights(labels: np.ndarray, classes: int):
    """(classes,) float32 tensor: n / (classes x count) per class present, 0 for absent ones."""
    import torch

    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def fit_predict(
    name: str,
    data: FoldData,
    kind: str,
    classes: int,
    *,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    settings: dict | None = None,
):
    """Train registered model ``name`` on the fold's training windows (Adam, cross-entropy,
    class-weighted for the targets of :data:`BALANCED`, or MSE on returns in units of their
    training standard deviation) and predict its test
    windows: class probabilities (n, classes) or returns (n,). Returns (model, prediction)."""
    import torch

    from ..models import build

    torch.manual_seed(seed)
    features = data.x_train.shape[2]
    out = 1 if kind == "return" else classes
    model = build(
        name,
        {"features": features, "window": data.x_train.shape[1], "out": out, **(settings or {})},
    )
    x = torch.from_numpy(data.x_train)
    if kind == "return":
        scale = float(np.std(data.y_train)) or 1.0
        y = torch.from_numpy((data.y_train / scale).astype(np.float32))
    else:
        scale = 1.0
        y = torch.from_numpy(data.y_train.astype(np.int64))
    weights = class_weights(data.y_train, classes) if kind in BALANCED else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=gen).split(batch_size):
            loss = model.loss(SimpleNamespace(x=x[rows], y=y[rows], class_weights=weights))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(data.x_test))
    if kind == "return":
        return model, scores[:, 0].double().numpy() * scale
    return model, torch.softmax(scores.double(), -1).numpy()


def _fit_job(job):
    """One model fit of a comparison: (the model where kept, else None; its predictions)."""
    registered, data, kind, classes, epochs, seed, settings, keep = job
    fitted, pred = fit_predict(
        registered, data, kind, classes, epochs=epochs, seed=seed, settings=settings
    )
    return (fitted if keep else None), pred


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def fit_pool(workers: int):
    """A pool of ``workers`` fresh processes with one torch thread each, for the small fits
    of a comparison: on a few cores these train faster side by side than one at a time with
    all cores each. Use it as a context manager."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread
    )


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
PRIMARY = {
    "fractal": ("balanced_accuracy", 1),
    "direction": ("accuracy", 1),
    "return": ("mse", -1),
}  # metric, +1 higher is better / -1 lower


@dataclass
class FoldScores:
    """What a fold scores: its test bars (window ends), their true labels and the log return
    of the bar after each (the P&L of a position taken at that bar)."""

    ends: np.ndarray
    truth: np.ndarray
    next_returns: np.ndarray


@dataclass
class Comparison:
    """Every model's and baseline's metrics and predictions per (fold, seed) unit, baselines
    with seed 0 only (they need none). ``best_baseline`` is the baseline best by the primary
    metric over all test bars, ``intervals`` the differences of each model from it at
    ``level`` (bootstrap over folds, each the mean over its seeds). ``fitted`` holds each
    model as trained on the last fold with the first seed, ``last_windows`` that fold's
    scaled test windows (with ``keep_models``)."""

    kind: str
    scores: dict[str, list[dict[str, float]]]  # name -> one metrics dict per unit
    units: dict[str, list[tuple[int, int]]]  # name -> its (fold, seed) units
    best_baseline: str
    intervals: dict[str, dict[str, Interval]]  # model -> metric -> Interval of the difference
    models: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    predictions: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    folds: list[FoldScores] = field(default_factory=list, repr=False)
    cost: float = 0.0
    level: float = 0.95
    fitted: dict = field(default_factory=dict, repr=False)
    last_windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)), repr=False)

    def pooled(self, name: str) -> dict[str, float]:
        """Metrics over every test bar at once (a model's: the mean over its seeds)."""
        per_seed: dict[int, list[np.ndarray]] = {}
        for (_, seed), pred in zip(self.units[name], self.predictions[name], strict=True):
            per_seed.setdefault(seed, []).append(pred)
        truth = np.concatenate([f.truth for f in self.folds])
        nxt = np.concatenate([f.next_returns for f in self.folds])
        runs = [
            metrics(self.kind, np.concatenate(p), truth, nxt, self.cost) for p in per_seed.values()
        ]
        return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}

    @cached_property
    def best_pnl_baseline(self) -> str:
        """The baseline that made the most money over all test bars."""
        return max(self.baselines, key=lambda n: self.pooled(n)["pnl"])

    def difference(
        self, model: str, metric: str, against: str | None = None, level: float | None = None
    ) -> Interval:
        """Interval of ``model``'s ``metric`` minus baseline ``against``'s (default: the best
        baseline), bootstrapped over folds at ``level`` (default: the comparison's)."""
        base = self.units[against or self.best_baseline]
        base_scores = self.scores[against or self.best_baseline]
        by_fold = {u[0]: s for u, s in zip(base, base_scores, strict=True)}
        diffs = _fold_means(self.units[model], self.scores[model], by_fold, metric)
        return bootstrap_interval(diffs, level or self.level)

    def value(self, name: str, metric: str, level: float | None = None) -> Interval:
        """Interval of a model's or baseline's ``metric`` itself over folds."""
        zero = {f: dict.fromkeys(self.scores[name][0], 0.0) for f in range(len(self.folds))}
        diffs = _fold_means(self.units[name], self.scores[name], zero, metric)
        return bootstrap_interval(diffs, level or self.level)

    def pooled_pnl(self, name: str) -> np.ndarray:
        """Per-bar P&L over every test bar in order (a model's: the mean over its seeds)."""
        per_seed: dict[int, list[np.ndarray]] = {}
        for (f, seed), pred in zip(self.units[name], self.predictions[name], strict=True):
            per_seed.setdefault(seed, []).append(
                pnl(self.kind, pred, self.folds[f].next_returns, self.cost)
            )
        return np.mean([np.concatenate(v) for v in per_seed.values()], 0)

    def confusion(self, name: str) -> np.ndarray:
        """(classes, classes) counts, true class down, predicted across, over every unit."""
        from sklearn.metrics import confusion_matrix

        classes = self.predictions[name][0].shape[1]
        return sum(
            confusion_matrix(self.folds[f].truth, pred.argmax(1), labels=range(classes))
            for (f, _), pred in zip(self.units[name], self.predictions[name], strict=True)
        )

    def beats_baseline(self, model: str, level: float | None = None) -> bool:
        """True only where the interval of the primary metric's difference from the best
        baseline lies wholly on the better side of 0 and, where the comparison kept the
        predictions, so does the interval of the P&L's difference from the most profitable
        baseline's: a better score that loses money against a naive rule is no win."""
        metric, sign = PRIMARY[self.kind]
        iv = self.difference(model, metric, level=level)
        better = bool(iv.low > 0) if sign > 0 else bool(iv.high < 0)
        if not better or not self.predictions:
            return better
        return bool(self.difference(model, "pnl", self.best_pnl_baseline, level).low > 0)


def _fold_means(units, scores, base, key) -> list[float]:
    """A model's difference from the baseline per fold, averaged over its seeds: the seeds of
    one fold share their test bars, so the folds are the independent units to resample."""
    by_fold: dict[int, list[float]] = {}
    for (fold, _), s in zip(units, scores, strict=True):
        by_fold.setdefault(fold, []).append(s[key] - base[fold][key])
    return [
        float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in by_fold.values()
    ]


def compare(
    feats: np.ndarray,
    labels: np.ndarray,
    returns: np.ndarray,
    folds,
    kind: str,
    *,
    models: Sequence[str] = tuple(VARIANTS),
    seeds: Sequence[int] = (0, 1, 2),
    window: int = 20,
    epochs: int = 8,
    cost: float = 0.0,
    level: float = 0.95,
    rules: dict[str, np.ndarray] | None = None,
    progress=None,
    keep_models: bool = False,
    executor=None,
) -> Comparison:
    """Walk-forward comparison: for each fold, the baselines once and every model of
    :data:`VARIANTS` named in ``models`` once per seed. ``returns[t]`` is the log return of
    bar t (close t-1 -> t); the next bar's return scores the P&L. ``rules`` are more naive
    baselines: a class per bar known at that bar (for the fractal target,
    :func:`~attnkit.tasks.prices.half_fractal`), scored like the others. ``keep_models``
    keeps each model trained on the last fold with the first seed (for pictures).
    ``executor`` (a ``concurrent.futures`` executor, see :func:`fit_pool`) runs the fits in
    other processes; the results are the same as in this one, in the same order."""
    classes = {"fractal": 3, "direction": 2, "return": 1}[kind]
    unknown = [m for m in models if m not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; expected some of {', '.join(VARIANTS)}")
    if not seeds:
        raise ValueError("at least one seed is needed")
    folds = list(folds)
    if not folds:
        raise ValueError("no folds to compare on")
    result = Comparison(kind, {}, {}, "", {}, models=list(models), cost=cost, level=level)
    nxt = np.r_[returns[1:], np.nan]

    def record(name, f, seed, pred, data):
        result.scores.setdefault(name, []).append(
            metrics(kind, pred, data.y_test, nxt[data.test_ends], cost)
        )
        result.units.setdefault(name, []).append((f, seed))
        result.predictions.setdefault(name, []).append(pred)

    datas = [fold_data(feats, labels, fold, window) for fold in folds]
    for f, data in enumerate(datas):
        ends = data.test_ends
        result.folds.append(FoldScores(ends, data.y_test, nxt[ends]))
        naive = {
            name: baseline(name, kind, data.y_train, returns[ends], classes)
            for name in BASELINES[kind]
        }
        for name, rule in (rules or {}).items():
            naive[name] = np.eye(classes)[np.asarray(rule)[ends]]
        for name, pred in naive.items():
            record(name, f, 0, pred, data)
    last = len(datas) - 1
    units = [(f, model, seed) for f in range(len(datas)) for model in models for seed in seeds]
    jobs = [
        (
            VARIANTS[m][0],
            datas[f],
            kind,
            classes,
            epochs,
            seed,
            VARIANTS[m][1],
            keep_models and f == last and seed == seeds[0],
        )
        for f, m, seed in units
    ]
    done = executor.map(_fit_job, jobs) if executor is not None else map(_fit_job, jobs)
    for (f, model, seed), (fitted, pred) in zip(units, done, strict=True):
        record(model, f, seed, pred, datas[f])
        if fitted is not None:
            result.fitted[model] = fitted
        if progress is not None:
            progress(f, model, seed)
    if keep_models:
        result.last_windows = datas[last].x_test
    result.baselines = [n for n in result.scores if n not in models]
    metric, sign = PRIMARY[kind]
    result.best_baseline = max(result.baselines, key=lambda n: sign * result.pooled(n)[metric])
    result.intervals = {
        m: {key: result.difference(m, key) for key in result.scores[m][0]} for m in models
    }
    return result


@dataclass
class Experiment:
    """A target's inputs to :func:`compare`: features, labels, returns, folds, rules."""

    feats: np.ndarray
    labels: np.ndarray
    returns: np.ndarray
    folds: list
    rules: dict[str, np.ndarray] | None


def experiment(
    bars,
    kind: str,
    *,
    window: int = 20,
    train_size: int = 2000,
    test_size: int = 500,
    expanding: bool = False,
) -> Experiment:
    """The features and ``kind`` labels of OHLCV ``bars``, walk-forward folds with the purge
    gap starting where the first window is all valid, and for the fractal target the
    half-fractal rule."""
    from ..tasks import prices as pr

    feats, labels = pr.features(bars), pr.targets(bars, kind)
    returns = np.r_[np.nan, np.diff(np.log(bars["close"].to_numpy(dtype=float)))]
    folds = list(
        pr.walk_forward(
            len(bars),
            start=pr.first_valid(feats) + window - 1,
            window=window,
            horizon=pr.TARGETS[kind],
            train_size=train_size,
            test_size=test_size,
            expanding=expanding,
        )
    )
    rules = {"half-fractal": pr.half_fractal(bars)} if kind == "fractal" else None
    return Experiment(feats, labels, returns, folds, rules)


def compare_bars(
    bars,
    kind: str = "fractal",
    *,
    window: int = 20,
    train_size: int = 2000,
    test_size: int = 500,
    expanding: bool = False,
    **options,
) -> Comparison:
    """:func:`compare` on OHLCV ``bars`` (see :mod:`attnkit.tasks.prices`) as
    :func:`experiment` sets it up. ``options`` go to :func:`compare`."""
    e = experiment(
        bars, kind, window=window, train_size=train_size, test_size=test_size, expanding=expanding
    )
    options.setdefault("rules", e.rules)
    return compare(e.feats, e.labels, e.returns, e.folds, kind, window=window, **options)
