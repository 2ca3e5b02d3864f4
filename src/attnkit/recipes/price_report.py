"""``attnkit report prices``: the whole price-series comparison in one call, written as a
Markdown report with PNGs whose first lines say whether self-attention beat the naive
baselines, by how much, and how sure that is.

For each target (fractal turning points, next-bar direction, next-bar return) every "series"
model variant (:func:`~attnkit.recipes.prices.model_variants`) is trained on walk-forward folds
with several seeds and scored against the naive baselines
(:func:`~attnkit.recipes.prices.compare`). A model *beats the baselines* only where two
intervals lie wholly on the better side of zero: its target's primary metric against the best
baseline's, and its P&L after costs against the most profitable baseline's (staying flat, for
the fractal and return targets, earns 0). The intervals are bootstrap intervals over folds,
widened for the number of model-target comparisons in the report (Bonferroni), so that a series
with nothing to learn (a random walk) is not reported as beaten by the luck of one comparison
among many.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..tasks.price_scores import PRIMARY, Interval
from ..tasks.prices import CLASSES, FEATURES, TARGETS, WINDOW
from . import prices as sc

KINDS = tuple(TARGETS)
TITLES = {
    "fractal": "fractal turning points (buy / sell / none)",
    "direction": "next-bar direction (up / down)",
    "return": "next-bar log return",
}
METRICS = {
    "fractal": (
        "balanced_accuracy",
        "accuracy",
        "macro_f1",
        "auc",
        "hit_rate",
        "missed_signals",
        "pnl",
        "trades",
    ),
    "direction": ("accuracy", "balanced_accuracy", "macro_f1", "auc", "pnl", "trades"),
    "return": ("mse", "mae", "directional_accuracy", "pnl", "trades"),
}
NAMES = {
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro-F1",
    "auc": "AUC",
    "hit_rate": "hit rate",
    "missed_signals": "missed signals",
    "pnl": "P&L",
    "directional_accuracy": "directional accuracy",
    "mse": "MSE",
    "mae": "MAE",
}


TRAIN_SIZE, TEST_SIZE, MIN_FOLDS, MAX_FOLDS = 2000, 250, 4, 12
EPOCHS = 6  # per fit: every fold, model and seed
WARMUP = 33  # bars before every indicator has its history (MACD's 26 + 9 - 2)


@dataclass
class Report:
    """What a report found: ``claims[(kind, model)]`` is True where the model beat the
    baselines; ``path`` the Markdown file; ``summary`` its first lines."""

    path: Path
    claims: dict[tuple[str, str], bool]
    summary: list[str]
    level: float  # the adjusted level of every difference's interval
    comparisons: dict[str, sc.Comparison] = field(repr=False)

    @property
    def attention_won(self) -> bool:
        return any(v for (_, model), v in self.claims.items() if model.startswith("attention"))


def _num(x: float, sign: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    plus = "+" if sign else ""
    if x != 0 and abs(x) < 1e-3:
        return f"{x:{plus}.2e}"
    return f"{x:{plus}.3f}"


def _iv(iv: Interval, sign: bool = True) -> str:
    return f"{_num(iv.mean, sign)} [{_num(iv.low, sign)}, {_num(iv.high, sign)}]"


def run(
    bars,
    out: str | Path,
    *,
    source: str = "bars",
    kinds: Sequence[str] = KINDS,
    models: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    window: int = WINDOW,
    train_size: int | None = None,
    test_size: int | None = None,
    epochs: int = EPOCHS,
    cost: float = 1e-4,
    level: float = 0.95,
    workers: int = 1,
    progress: bool = True,
) -> Report:
    """Compare every model with the baselines on each of ``kinds`` and write
    ``out/report.md``, ``out/results.json`` and the PNGs; returns the :class:`Report`.
    ``train_size`` and ``test_size`` default to :func:`fold_sizes`; ``workers`` > 1 trains
    that many models at a time in other processes (:func:`~attnkit.recipes.prices.fit_pool`)."""
    from tqdm import tqdm

    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown targets {unknown}; expected some of {', '.join(KINDS)}")
    models = list(sc.model_variants()) if models is None else list(models)
    if not models:
        raise ValueError("no models to compare")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_size, test_size = fold_sizes(len(bars), window, train_size, test_size)
    experiments = {
        k: sc.experiment(bars, k, window=window, train_size=train_size, test_size=test_size)
        for k in kinds
    }
    total = sum(len(e.folds) for e in experiments.values()) * len(models) * len(seeds)
    bar = tqdm(total=total, desc="training", unit="fit", disable=not progress)
    comparisons = {}
    pool = sc.fit_pool(workers) if workers > 1 else contextlib.nullcontext()
    try:
        with pool as executor:
            for kind, e in experiments.items():
                bar.set_postfix_str(kind)
                comparisons[kind] = sc.compare(
                    e.feats,
                    e.labels,
                    e.returns,
                    e.folds,
                    kind,
                    models=models,
                    seeds=seeds,
                    window=window,
                    epochs=epochs,
                    cost=cost,
                    level=level,
                    rules=e.rules,
                    progress=lambda *_: bar.update(1),
                    keep_models=True,
                    executor=executor,
                )
    finally:
        bar.close()
    family = len(models) * len(kinds)
    adjusted = 1 - (1 - level) / family
    claims = {(k, m): c.beats_baseline(m, adjusted) for k, c in comparisons.items() for m in models}
    seconds = time.perf_counter() - started
    summary = _summary(comparisons, claims, models, adjusted, level, family, source)
    pictures = {k: _pictures(bars, c, out, k) for k, c in comparisons.items()}
    lines = [
        *summary,
        "",
        *_setup(
            bars,
            experiments,
            models,
            seeds,
            window,
            train_size,
            test_size,
            epochs,
            cost,
            seconds,
            source,
        ),
    ]
    for kind, comp in comparisons.items():
        lines += ["", *_section(comp, kind, claims, adjusted, level, pictures[kind])]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_json(out / "results.json", comparisons, claims, adjusted, level, source, seconds)
    return Report(path, claims, summary, adjusted, comparisons)


def fold_sizes(
    n: int, window: int = WINDOW, train_size: int | None = None, test_size: int | None = None
) -> tuple[int, int]:
    """(training windows, test bars) per fold for ``n`` bars where not given: up to
    :data:`TRAIN_SIZE` training windows but no more than 40% of the bars, and test blocks of
    :data:`TEST_SIZE` bars, smaller where that leaves fewer than :data:`MIN_FOLDS` folds (the
    intervals rest on the folds) and larger where it makes more than :data:`MAX_FOLDS` (a long
    series would otherwise take hours: a refit every few hundred bars of 100,000).

        >>> fold_sizes(5000), fold_sizes(1200), fold_sizes(50_000)
        ((2000, 250), (480, 155), (2000, 3992))
    """
    usable = n - WARMUP - window - 2 * (window + 2)  # indicator warm-up, first window, gaps
    if train_size is None:
        train_size = max(1, min(TRAIN_SIZE, int(0.4 * n)))
    if test_size is None:
        scored = usable - train_size
        test_size = max(1, min(TEST_SIZE, scored // MIN_FOLDS), -(-scored // MAX_FOLDS))
    return train_size, test_size


# ------------------------------------------------------------------------------ text


def _summary(comparisons, claims, models, adjusted, level, family, source) -> list[str]:
    attention = [m for m in models if m.startswith("attention")]
    won = [(k, m) for (k, m), v in claims.items() if v and m in attention]
    lines = [f"# Self-attention against naive baselines: {source}", ""]
    if not attention:
        lines.append("**No attention model was part of this comparison.**")
    elif won:
        where = "; ".join(f"{m} on {k}" for k, m in won)
        lines.append(f"**Yes: attention beat the naive baselines** ({where}).")
    else:
        lines.append("**No: attention did not beat the naive baselines** on any target.")
    others = [(k, m) for (k, m), v in claims.items() if v and m not in attention]
    if others:
        lines.append(
            "Other models that beat them: " + "; ".join(f"{m} on {k}" for k, m in others) + "."
        )
    lines.append("")
    for kind, comp in comparisons.items():
        metric, _ = PRIMARY[kind]
        base, rich = comp.best_baseline, comp.best_pnl_baseline
        parts = []
        for m in attention or models[:1]:
            d = comp.difference(m, metric, base, adjusted)
            p = comp.difference(m, "pnl", rich, adjusted)
            parts.append(f"{m}: {NAMES.get(metric, metric)} {_iv(d)}, P&L against {rich} {_iv(p)}")
        lines.append(
            f"- **{TITLES[kind]}**, best baseline {base} ({NAMES.get(metric, metric)} "
            f"{_num(comp.pooled(base)[metric])}). " + "; ".join(parts) + "."
        )
    folds = len(next(iter(comparisons.values())).folds)
    lines += [
        "",
        f"Differences are means over {folds} walk-forward folds (each fold the mean "
        f"of its seeds) with {adjusted:.2%} bootstrap intervals: {level:.0%} widened "
        f"for the {family} model-target comparisons of this report (Bonferroni). A model "
        "beats the baselines only where both intervals lie wholly on the better side of "
        "0. P&L is the sum of log returns per fold after costs.",
    ]
    return lines


def _setup(
    bars, experiments, models, seeds, window, train_size, test_size, epochs, cost, seconds, source
) -> list[str]:
    e = next(iter(experiments.values()))
    first, last = e.folds[0], e.folds[-1]
    return [
        "## Setup",
        "",
        f"- data: {source}, {len(bars):,} bars from {bars.index[0]} to {bars.index[-1]}",
        f"- features per bar: {', '.join(FEATURES)}; windows of {window} bars",
        f"- walk-forward: {len(e.folds)} folds; each trains on {train_size} windows, skips a "
        f"purge gap of {first.gap} bars and scores the next {test_size} (the last fold "
        f"{last.test[1] - last.test[0]}); scalers fit on each training window only; every "
        "test bar scored once",
        f"- models: {', '.join(models)}; seeds {', '.join(map(str, seeds))}; {epochs} epochs "
        "each (Adam)",
        f"- P&L: long/short/flat per prediction, {cost:g} of the price per unit of position change",
        f"- run time: {seconds / 60:.1f} min",
    ]


def _section(comp, kind, claims, adjusted, level, pictures) -> list[str]:
    metric, _ = PRIMARY[kind]
    names = [*comp.models, *comp.baselines]
    keys = METRICS[kind]
    lines = [
        f"## {TITLES[kind]}",
        "",
        f"Best baseline by {NAMES.get(metric, metric)}: **{comp.best_baseline}**; most "
        f"profitable baseline: **{comp.best_pnl_baseline}**.",
        "",
        f"Each metric's mean over folds with its {level:.0%} bootstrap interval:",
        "",
        "| model | " + " | ".join(NAMES.get(k, k) for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name in names:
        cells = [_iv(comp.value(name, k, level), False) for k in keys]
        shown = name if name in comp.models else f"{name} (baseline)"
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Differences, {adjusted:.2%} intervals:",
        "",
        f"| model | {NAMES.get(metric, metric)} - {comp.best_baseline} | P&L - "
        f"{comp.best_pnl_baseline} | beats the baselines |",
        "|---|---|---|---|",
    ]
    for m in comp.models:
        d = comp.difference(m, metric, comp.best_baseline, adjusted)
        p = comp.difference(m, "pnl", comp.best_pnl_baseline, adjusted)
        lines.append(f"| {m} | {_iv(d)} | {_iv(p)} | {'**yes**' if claims[(kind, m)] else 'no'} |")
    for caption, name in pictures:
        lines += ["", f"![{caption}]({name})", "", caption]
    return lines


def _write_json(path, comparisons, claims, adjusted, level, source, seconds) -> None:
    out = {
        "source": source,
        "level": level,
        "adjusted_level": adjusted,
        "seconds": seconds,
        "targets": {},
    }
    for kind, comp in comparisons.items():
        metric, _ = PRIMARY[kind]
        names = [*comp.models, *comp.baselines]
        out["targets"][kind] = {
            "best_baseline": comp.best_baseline,
            "best_pnl_baseline": comp.best_pnl_baseline,
            "values": {n: {k: vars(comp.value(n, k, level)) for k in METRICS[kind]} for n in names},
            "differences": {
                m: {
                    metric: vars(comp.difference(m, metric, comp.best_baseline, adjusted)),
                    "pnl": vars(comp.difference(m, "pnl", comp.best_pnl_baseline, adjusted)),
                    "beats_baselines": claims[(kind, m)],
                }
                for m in comp.models
            },
        }
    path.write_text(json.dumps(out, indent=1, default=float, allow_nan=True), encoding="utf-8")


# ------------------------------------------------------------------------------ pictures


def _pictures(bars, comp, out: Path, kind: str) -> list[tuple[str, str]]:
    """Write the kind's PNGs; (caption, file name) of each."""
    from ..viz import series as viz

    made = []
    times = bars.index[np.concatenate([f.ends for f in comp.folds])]
    curves = {n: comp.pooled_pnl(n) for n in [*comp.models, *comp.baselines]}
    name = f"equity_{kind}.png"
    title = f"{TITLES[kind]}: equity over the test bars (models: mean of their seeds)"
    viz.save(viz.equity_figure(times, curves, comp.baselines, title), out / name)
    made.append(("Equity curves: every test bar traded, after costs; baselines dashed.", name))
    if CLASSES[kind]:
        matrices = {n: comp.confusion(n) for n in [*comp.models, comp.best_baseline]}
        name = f"confusion_{kind}.png"
        viz.save(viz.confusion_figure(matrices, CLASSES[kind], TITLES[kind]), out / name)
        made.append(
            (
                "Confusion matrices over every test bar and seed (rows: the true class, "
                "as shares).",
                name,
            )
        )
    attention = {m: model for m, model in comp.fitted.items() if m.startswith("attention")}
    if attention and len(comp.last_windows):
        rows, labels = _looked_at(attention, comp, bars, kind)
        mlp = comp.fitted.get("mlp")
        fixed = mlp.bar_weights().numpy() if mlp is not None else None
        name = f"attention_{kind}.png"
        title = "where the last bar looked, for a few test windows of the last fold"
        viz.save(viz.bar_weights_figure(rows, fixed, labels, title), out / name)
        made.append(
            (
                "Self-attention's weights over the past bars change with every input "
                "(one line per prediction); a fully connected layer (the MLP, black) "
                "weighs each bar the same whatever the input.",
                name,
            )
        )
    return made


def _looked_at(models: dict, comp, bars, kind: str, count: int = 5):
    import torch

    x = comp.last_windows
    pick = np.linspace(0, len(x) - 1, min(count, len(x))).round().astype(int)
    ends = comp.folds[-1].ends[pick]
    rows = {}
    predicted = None
    for name, model in models.items():
        with torch.no_grad():
            scores, weights = model(torch.from_numpy(x[pick]), return_weights=True)
        rows[name] = weights[-1][:, :, -1, :].mean(1).double().numpy()  # heads averaged
        if predicted is None:
            predicted = scores[:, 0].numpy() if kind == "return" else scores.argmax(1).numpy()
    classes = CLASSES[kind]
    labels = [
        f"{bars.index[e]:%Y-%m-%d %H:%M} -> "
        + (classes[int(p)] if classes else f"{float(p):+.2f} sd")
        for e, p in zip(ends, predicted, strict=True)
    ]
    return rows, labels
