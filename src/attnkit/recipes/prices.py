"""The walk-forward comparison of a price-series experiment: every model variant of the
"series" family (:func:`~attnkit.models.variants`) trained on each fold's training windows
with several seeds by the one trainer (:func:`~attnkit.train.fit`, in memory), scored on the
fold's test bars against the naive baselines, with bootstrap intervals of the differences.

The windows, scalers and folds are :mod:`attnkit.tasks.price_windows` and
:mod:`attnkit.tasks.prices`; the metrics, baselines and intervals
:mod:`attnkit.tasks.price_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..models import Variant, variants
from ..tasks import price_windows as pw
from ..tasks import prices as pr
from ..tasks.price_scores import (
    BASELINES,
    PRIMARY,
    Interval,
    baseline,
    bootstrap_interval,
    metrics,
    pnl,
)
from ..train import TrainConfig, fit

FAMILY = "series"  # the models compared: the registry's variants of this family


def model_variants() -> dict[str, Variant]:
    """The models a comparison (and ``attnkit train prices --model``) can name."""
    return variants(FAMILY)


def fit_predict(
    name: str,
    data: pw.FoldData,
    kind: str,
    *,
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    settings: dict | None = None,
):
    """Train variant ``name`` on the fold's training windows with :func:`~attnkit.train.fit`
    (no held-out set: all ``epochs``, nothing written; class-weighted cross-entropy for the
    targets of :data:`~attnkit.tasks.price_windows.BALANCED`, or MSE on returns in units of
    their training standard deviation) and predict its test windows: class probabilities
    (n, classes) or returns (n,). ``settings`` change the variant's model config. Returns
    (model, prediction)."""
    import torch

    torch.manual_seed(seed)
    sizes = {
        "features": data.x_train.shape[2],
        "window": data.x_train.shape[1],
        "out": pr.outputs(kind),
    }
    model = model_variants()[name].build({**sizes, **(settings or {})})
    train = pw.Windows.for_training(data.x_train, data.y_train, kind)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    fit(model, None, train, None, cfg, None, log=lambda _: None, device="cpu")
    return model, pw.scores_of(model, torch.from_numpy(data.x_test), kind, train.scale)


def _fit_job(job):
    """One model fit of a comparison: (the model where kept, else None; its predictions)."""
    name, data, kind, epochs, seed, keep = job
    fitted, pred = fit_predict(name, data, kind, epochs=epochs, seed=seed)
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
    models: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    window: int = pr.WINDOW,
    epochs: int = 8,
    cost: float = 0.0,
    level: float = 0.95,
    rules: dict[str, np.ndarray] | None = None,
    progress=None,
    keep_models: bool = False,
    executor=None,
) -> Comparison:
    """Walk-forward comparison: for each fold, the baselines once and every model of
    :func:`model_variants` named in ``models`` (default: all) once per seed. ``returns[t]`` is
    the log return of bar t (close t-1 -> t); the next bar's return scores the P&L. ``rules`` are
    more naive baselines: a class per bar known at that bar (for the fractal target,
    :func:`~attnkit.tasks.prices.half_fractal`), scored like the others. ``keep_models``
    keeps each model trained on the last fold with the first seed (for pictures).
    ``executor`` (a ``concurrent.futures`` executor, see :func:`fit_pool`) runs the fits in
    other processes; the results are the same as in this one, in the same order."""
    classes = pr.outputs(kind)
    known = model_variants()
    models = list(known) if models is None else list(models)
    unknown = [m for m in models if m not in known]
    if unknown:
        raise ValueError(f"unknown models {unknown}; expected some of {', '.join(known)}")
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

    datas = [pw.fold_data(feats, labels, fold, window) for fold in folds]
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
        (m, datas[f], kind, epochs, seed, keep_models and f == last and seed == seeds[0])
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
    window: int = pr.WINDOW,
    train_size: int = 2000,
    test_size: int = 500,
    expanding: bool = False,
) -> Experiment:
    """The features and ``kind`` labels of OHLCV ``bars``, walk-forward folds with the purge
    gap starting where the first window is all valid, and for the fractal target the
    half-fractal rule."""
    from ..tasks import prices as pr

    feats, labels, returns = pr.features(bars), pr.targets(bars, kind), pr.log_returns(bars)
    folds = list(
        pr.walk_forward(
            len(bars),
            start=pr.first_end(feats, window),
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
    window: int = pr.WINDOW,
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
