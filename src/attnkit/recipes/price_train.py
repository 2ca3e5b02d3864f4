"""``attnkit train prices``: one model of a price series trained by the generic trainer, the
best epoch kept as a checkpoint that reloads with identical predictions.

The bars with a label are split in time into training, validation and test window ends, with
a purge gap of window + horizon bars between neighbours (as the walk-forward folds keep). The
feature scaler is fit on the training windows' rows only and saved with the model, with the
training labels' class counts (the majority baseline) and the return scale, so a reloaded
checkpoint predicts new bars exactly as it predicted them when it was saved. The epoch with the
lowest validation loss is kept; the test split is scored once, against the naive baselines.
The windows, the split and the trainer's data set and task are
:mod:`attnkit.tasks.price_windows`; the models are the registry's "series" variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models import SeriesAttention, entry
from ..tasks import price_scores as ps
from ..tasks import price_windows as pw
from ..tasks import prices as pr
from ..train import CheckpointError, fit, load_model
from ..train.loop import SettingsError
from . import base
from .base import merge_settings, saved_settings
from .prices import model_variants

__all__ = ["MODELS", "PriceRun", "evaluate", "load", "load_bars", "predict", "train"]

MODELS = tuple(model_variants())
DEFAULTS = {"epochs": 30, "batch_size": 128, "lr": 2e-3, "patience": 6}
DATA_FIELDS = frozenset({"features", "window", "out"})  # set from the data


@dataclass
class PriceRun:
    """A trained or loaded price model and its config.json (the task: target, window,
    scaler; the data: where the bars came from and how they were split)."""

    model: nn.Module
    config: dict[str, Any]
    served: Any = None  # the explorer's bars and scaled features, read on first use

    @property
    def task(self) -> dict[str, Any]:
        return self.config["task"]


def load_bars(data: str | Path | None):
    """Bars from a named series (:data:`~attnkit.tasks.prices.SERIES`) or a CSV file; the
    default is the EURUSD hourly series."""
    data = str(data) if data else "eurusd-h1"
    if data in pr.SERIES:
        return pr.load_series(data)
    if not Path(data).is_file():
        raise pr.PricesError(f"no file {data!r}, and it is not a series of {', '.join(pr.SERIES)}")
    return pr.read_ohlcv(data)


def _prepared(bars, kind: str):
    """(features, labels of ``kind``, the log return of the bar after each bar)."""
    return pr.features(bars), pr.targets(bars, kind), np.r_[pr.log_returns(bars)[1:], np.nan]


def train(
    data: str | Path | None = None,
    *,
    out: str | Path,
    kind: str = "fractal",
    model: str | None = None,
    window: int = pr.WINDOW,
    bars=None,
    **settings: Any,
) -> PriceRun:
    """Train comparison model ``model`` (a name of :data:`MODELS`, default "attention") on
    bars from ``data`` (a series name or CSV file) or ``bars``, for target ``kind``; keep the
    best epoch in ``out``. ``settings`` are fields of the model's config or of TrainConfig
    (None: not given), or the job's options
    (:class:`~attnkit.recipes.base.Job`: ``resume``, ``threads``, ``log``, ...)."""
    if kind not in pr.TARGETS:
        raise SettingsError(f"unknown target {kind!r}; expected one of {', '.join(pr.TARGETS)}")
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "prices", "price-series")
    if saved is not None:
        kind, window = saved["task"]["kind"], saved["task"]["window"]
        model = saved["task"]["variant"]
        settings = saved_settings(saved, settings, DATA_FIELDS | {"num_heads"})
        data = data or saved["data"]["source"]
    model = model or MODELS[0]
    if model not in MODELS:
        raise SettingsError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    variant = model_variants()[model]
    own = frozenset(f.name for f in _fields(variant.model)) - DATA_FIELDS
    model_kw, tcfg = merge_settings(
        {**settings, "progress": job.progress},
        model,
        own,
        DATA_FIELDS,
        {**DEFAULTS, **variant.settings},
    )
    if bars is None:
        bars = load_bars(data)
    source = str(data) if data else "eurusd-h1"
    feats, labels, nxt = _prepared(bars, kind)
    splits = pw.split_ends(
        len(bars), start=pr.first_end(feats, window), window=window, horizon=pr.TARGETS[kind]
    )
    scaler = pw.fit_scaler(pw.scaler_rows(feats, splits[0], window))
    scaled = pw.standardise(feats, *scaler)
    ends = [np.arange(*s) for s in splits]
    train_ds = pw.Windows.for_training(pw.windows(scaled, ends[0], window), labels[ends[0]], kind)
    valid_ds = pw.Windows(
        pw.windows(scaled, ends[1], window), labels[ends[1]], kind, train_ds.scale, train_ds.weights
    )
    classes = pr.outputs(kind)
    counts = [] if kind == "return" else np.bincount(labels[ends[0]], minlength=classes).tolist()
    task_meta = {
        "name": "prices",
        "kind": kind,
        "variant": model,
        "window": window,
        "features": list(pr.FEATURES),
        "mean": scaler[0].tolist(),
        "scale": scaler[1].tolist(),
        "return_scale": train_ds.scale,
        "train_counts": counts,
        "splits": [list(s) for s in splits],
    }
    meta = {
        "task": task_meta,
        "data": base.with_digest(
            {
                "source": source,
                "bars": len(bars),
                "first": str(bars.index[0]),
                "last": str(bars.index[-1]),
            }
        ),
    }
    torch.manual_seed(tcfg.seed)
    net = variant.build({"features": feats.shape[1], "window": window, "out": classes, **model_kw})
    params = sum(p.numel() for p in net.parameters())
    job.log(
        f"{source}: {len(bars):,} bars; {len(ends[0]):,} training windows, {len(ends[1]):,} "
        f"validation, {len(ends[2]):,} test; {model}, {params:,} parameters"
    )
    task = pw.PriceTask(kind, labels[ends[1]], nxt[ends[1]])
    state = fit(net, task, train_ds, valid_ds, tcfg, out, meta, resume=resume, log=job.log)
    return base.finish(load, out, state)


def _fields(registered: str):
    from dataclasses import fields

    return fields(entry(registered).config_cls)


def load(checkpoint: str | Path) -> PriceRun:
    """The price model saved in ``checkpoint``; CheckpointError if it is not one or its task
    does not fit its model."""
    model, config = load_model(checkpoint)
    task = config.get("task") or {}
    if task.get("name") != "prices":
        raise CheckpointError(f"{checkpoint} holds no price-series model")
    try:
        mean, scale = np.asarray(task["mean"], float), np.asarray(task["scale"], float)
        ok = (
            task["kind"] in pr.TARGETS
            and task["window"] == model.cfg.window
            and len(mean) == len(scale) == model.cfg.features == len(pr.FEATURES)
            and list(task["features"]) == list(pr.FEATURES)
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{checkpoint}/config.json: bad task: {err}") from None
    if not ok:
        raise CheckpointError(f"{checkpoint}/config.json: the task does not match the model")
    return PriceRun(model, config)


def _scores(run: PriceRun, bars, ends: np.ndarray | None = None):
    """(window ends, predictions) of ``run`` over ``bars``: probabilities or log returns."""
    task = run.task
    window = task["window"]
    feats = pr.features(bars)
    if ends is None:
        ends = np.arange(pr.first_end(feats, window), len(bars))
    if not len(ends):
        raise pr.PricesError(f"{len(bars)} bars hold no full window of {window} valid bars")
    scaled = pw.standardise(feats, np.asarray(task["mean"]), np.asarray(task["scale"]))
    x = torch.from_numpy(pw.windows(scaled, ends, window))
    return ends, pw.scores_of(run.model, x, task["kind"], task["return_scale"])


def predict(run: PriceRun, bars):
    """A DataFrame indexed by bar time: for each bar with a full window of valid features, the
    class probabilities (``p_<class>``) or the predicted next log ``return``, and the
    ``position`` a trader following the model takes for the next bar."""
    import pandas as pd

    ends, pred = _scores(run, bars)
    kind = run.task["kind"]
    if kind == "return":
        frame = pd.DataFrame({"return": pred}, index=bars.index[ends])
    else:
        frame = pd.DataFrame(
            pred, index=bars.index[ends], columns=[f"p_{c}" for c in pr.CLASSES[kind]]
        )
    frame["position"] = ps.positions(kind, pred)
    return frame


def own_bars(run: PriceRun):
    """The bars the run was trained on, read again from their source; PricesError if they
    have changed since (the splits would no longer be the run's)."""
    data = run.config["data"]
    bars = load_bars(data["source"])
    if len(bars) != data["bars"]:
        raise pr.PricesError(
            f"{data['source']} has changed since training: {len(bars)} bars, not {data['bars']}"
        )
    return bars


def evaluate(run: PriceRun, bars=None, cost: float = 1e-4) -> dict[str, dict[str, float]]:
    """Metrics of the model and of each naive baseline: on the test split of the run's own
    data (``bars`` None), or on every labelled bar of ``bars``."""
    task = run.task
    kind, window = task["kind"], task["window"]
    if bars is None:
        bars = own_bars(run)
        ends = np.arange(*task["splits"][2])
    else:
        feats = pr.features(bars)
        ends = np.arange(pr.first_end(feats, window), len(bars) - pr.TARGETS[kind])
    ends, pred = _scores(run, bars, ends)
    _, labels, nxt = _prepared(bars, kind)
    classes = pr.outputs(kind)
    counts = task["train_counts"]
    train_labels = np.repeat(np.arange(len(counts)), counts) if counts else np.array([])
    returns = np.r_[np.nan, nxt[:-1]]
    out = {task["variant"]: ps.metrics(kind, pred, labels[ends], nxt[ends], cost)}
    for name in ps.BASELINES[kind]:
        naive = ps.baseline(name, kind, train_labels, returns[ends], classes)
        out[name] = ps.metrics(kind, naive, labels[ends], nxt[ends], cost)
    if kind == "fractal":
        rule = np.eye(classes)[pr.half_fractal(bars)[ends]]
        out["half-fractal"] = ps.metrics(kind, rule, labels[ends], nxt[ends], cost)
    return out


# -- the recipe protocol (recipes.base): `attnkit train prices`, eval, predict -------------


@dataclass
class PriceSettings(base.TrainSettings):
    """``attnkit train prices``: a model of a price series."""

    data: str | None = base.setting(
        "a CSV of OHLCV bars or a series name (eurusd-h1, sp500-d1)", kind=base.path
    )
    model: str | None = base.setting("the model compared", choices=MODELS)
    label: str | None = base.setting(
        "what to predict: fractal turning points, next-bar direction or return",
        choices=tuple(pr.TARGETS),
    )
    window: int | None = base.setting("bars per window", kind=base.positive_int)
    d_model: int | None = base.setting("the attention model's width", kind=base.positive_int)
    num_heads: int | None = base.setting("the attention model's heads", kind=base.positive_int)
    layers: int | None = base.setting("the attention model's layers", kind=base.positive_int)
    hidden_dim: int | None = base.setting("the LSTM's or MLP's width", kind=base.positive_int)


class PriceRecipe(base.Recipe):
    name = "prices"
    help = "a model of a price series (default: EURUSD hourly bars)"
    what = "a price model"
    settings = PriceSettings
    models = MODELS
    options = {
        "eval": frozenset({"data"}),
        "predict": frozenset({"data", "last", "json"}),
        "export": frozenset({"out", "target"}),
    }

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        model = model or MODELS[0]
        variant = model_variants()[model]
        cfg = entry(variant.model).config_cls
        values = base.resolved(cfg, dict(variant.settings), base.TrainConfig(**DEFAULTS))
        return {
            **values,
            "data": "eurusd-h1",
            "label": "fractal",
            "window": pr.WINDOW,
            "minutes": None,
        }

    def train(self, settings: PriceSettings, job: base.Job) -> PriceRun:
        kw = settings.given()
        data = kw.pop("data", None)
        bars = None if job.resume else load_bars(data)
        return train(data, kind=kw.pop("label", "fractal"), bars=bars, **job.arguments(), **kw)

    def trained(self, run: PriceRun, job: base.Job) -> list[str]:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in run.config["metrics"].items())
        options = base.Options()
        return [
            f"best epoch {run.config['epoch']}: {shown}; checkpoint in {job.out}",
            self.format_scores(evaluate(run), options),
            f"try: attnkit predict --checkpoint {job.out} --data {run.config['data']['source']}",
        ]

    def load(self, checkpoint: str | Path) -> PriceRun:
        return load(checkpoint)

    def evaluate(self, run: PriceRun, options: base.Options) -> dict[str, Any]:
        return evaluate(run, load_bars(options.data) if options.data else None)

    def format_scores(self, scores: dict[str, Any], options: base.Options) -> str:
        what = f"every labelled bar of {options.data}" if options.data else "the test split"
        keys = list(next(iter(scores.values())))
        width = max(map(len, keys)) + 2
        lines = [f"\n{what}:", f"{'':<16}" + "".join(f"{k:>{width}}" for k in keys)]
        for name, values in scores.items():
            lines.append(f"{name:<16}" + "".join(f"{values[k]:>{width}.4g}" for k in keys))
        return "\n".join(lines)

    def predict(self, run: PriceRun, options: base.Options) -> list[base.Prediction]:
        frame = predict(run, load_bars(options.data or run.config["data"]["source"]))
        frame = frame.tail(options.last or 10)
        table = frame.to_string(float_format=lambda x: f"{x:.6g}").splitlines()
        head = len(table) - len(frame)  # the header's lines (one more for a named index)
        out = [
            base.Prediction({"time": str(t), **{k: float(v) for k, v in row.items()}}, line)
            for (t, row), line in zip(frame.iterrows(), table[head:], strict=True)
        ]
        if out:
            out[0].line = "\n".join([*table[:head], out[0].line])  # the header above row 1
        return out

    def serve_card(self, run: PriceRun) -> dict[str, Any]:
        return {**super().serve_card(run), "kind": "prices", "transformer": False}

    def serve_predict(self, run: PriceRun, text: str, beam: int = 1) -> dict[str, Any]:
        """Window ``text`` (an index into the run's test split): its bars' times and closes,
        the prediction and the truth, and for an attention model the last layer's weights of
        the window's last bar over every bar of the window, one row per head."""
        from ..tasks.images import test_index

        if run.served is None:
            bars = own_bars(run)
            task = run.task
            scaled = pw.standardise(pr.features(bars), np.asarray(task["mean"]), task["scale"])
            run.served = (bars, scaled, np.arange(*task["splits"][2]))
        bars, scaled, ends = run.served
        kind, window = run.task["kind"], run.task["window"]
        i = test_index(text, len(ends), "a price model", "a window of its test split")
        end = int(ends[i])
        x = torch.from_numpy(pw.windows(scaled, np.array([end]), window))
        weights = None
        if isinstance(run.model, SeriesAttention):  # the models without weights show none
            run.model.eval()
            with torch.no_grad():
                _, layers = run.model(x, return_weights=True)
            weights = base.rounded(layers[-1][0, :, -1, :])  # (heads, window)
        pred = np.asarray(pw.scores_of(run.model, x, kind, run.task["return_scale"])[0])
        truth = pr.targets(bars, kind)[end]
        classes = pr.CLASSES[kind]
        span = bars.iloc[end - window + 1 : end + 1]
        return {
            "kind": "prices",
            "input": str(i),
            "time": str(bars.index[end]),
            "output": classes[int(pred.argmax())] if classes else f"{float(pred):+.3g}",
            "truth": classes[int(truth)] if classes else f"{float(truth):+.3g}",
            "probabilities": (
                dict(zip(classes, np.round(pred, 5).tolist(), strict=True)) if classes else None
            ),
            "position": float(ps.positions(kind, pred[None])[0]),
            "times": [str(t) for t in span.index],
            "closes": span["close"].astype(float).round(6).tolist(),
            "weights": weights,
            "test_windows": len(ends),
        }

    def export(self, run: PriceRun, out: Path, **options: Any) -> list[Path]:
        """``out/model.onnx`` (the scaler folded in) and ``out/model.json`` (its inputs and
        outputs); with ``target="mt5"`` a static batch of one, the onnxruntime 1.14 operators
        checked, and ``out/model.mqh``. See :mod:`attnkit.export.prices`."""
        from ..export import prices as ex

        return ex.export(run, Path(out), target=options.get("target"), recipe=self.name)
