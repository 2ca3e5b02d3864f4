"""``attnkit train prices``, ``attnkit report prices`` and ``eval`` / ``predict`` of price
checkpoints: thin wrappers around ``recipes.price_train`` and ``recipes.price_report``."""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from .arguments import name_list, path, positive_int, refuse_flags
from .errors import UserError

# train options that mean nothing to a price model
NOT_FOR_PRICES = ("n", "normalize", "context", "unknown_token", "target", "attention",
                  "direction", "vocab_size", "positions")  # fmt: skip


def is_price_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "prices"


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", choices=("fractal", "direction", "return"),
                   help="prices: what to predict: fractal turning points (default), next-bar "
                   "direction or return")  # fmt: skip
    p.add_argument("--window", type=positive_int, help="prices: bars per window (default: 20)")


def _bars(data: str | None):
    from ..recipes import price_train
    from ..tasks.prices import PricesError

    try:
        return price_train.load_bars(data)
    except PricesError as err:
        raise UserError(str(err)) from None


def cmd_train(args: argparse.Namespace) -> int:
    from ..recipes import price_train as recipe

    refuse_flags(args, NOT_FOR_PRICES, "prices")
    model = args.model or "attention"
    if model not in recipe.MODELS:
        raise UserError(f"--model for prices is one of {', '.join(recipe.MODELS)}")
    sizes = {"d_model": args.d_model, "num_heads": args.heads, "layers": args.layers,
             "hidden_dim": args.hidden}  # fmt: skip
    settings = {**sizes, "epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
                "lr": args.lr, "patience": args.patience,
                "time_limit": None if args.minutes is None else args.minutes * 60}  # fmt: skip
    bars = None if args.resume else _bars(args.data)
    run = recipe.train(args.data, out=args.out, kind=args.label or "fractal", model=model,
                       window=args.window or 20, resume=args.resume, overwrite=args.overwrite,
                       threads=args.threads, bars=bars, **settings)  # fmt: skip
    shown = ", ".join(f"{k} {v:.4f}" for k, v in run.config["metrics"].items())
    print(f"best epoch {run.config['epoch']}: {shown}; checkpoint in {args.out}")
    _print_scores(recipe.evaluate(run), "test split", False)
    print(f"try: attnkit predict --checkpoint {args.out} --data {run.config['data']['source']}")
    return 0


def _print_scores(scores: dict, what: str, as_json: bool) -> None:
    if as_json:
        clean = {name: {k: v if math.isfinite(v) else None for k, v in values.items()}
                 for name, values in scores.items()}  # fmt: skip
        print(json.dumps(clean))
        return
    keys = list(next(iter(scores.values())))
    width = max(map(len, keys)) + 2
    print(f"\n{what}:")
    print(f"{'':<16}" + "".join(f"{k:>{width}}" for k in keys))
    for name, values in scores.items():
        print(f"{name:<16}" + "".join(f"{values[k]:>{width}.4g}" for k in keys))


def cmd_eval(args: argparse.Namespace) -> int:
    from ..recipes import price_train as recipe

    if args.save or args.beam != 1:
        raise UserError("--save and --beam apply to translation checkpoints")
    run = recipe.load(args.checkpoint)
    bars = _bars(args.data) if args.data else None
    what = f"every labelled bar of {args.data}" if args.data else "the test split"
    try:
        scores = recipe.evaluate(run, bars)
    except ValueError as err:
        raise UserError(str(err)) from None
    _print_scores(scores, what, args.json)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..recipes import price_train as recipe

    if args.text or args.plot or args.beam != 1:
        raise UserError("a price model predicts bars: give --data (a CSV file or series), not "
                        "text, --plot or --beam")  # fmt: skip
    run = recipe.load(args.checkpoint)
    frame = recipe.predict(run, _bars(args.data or run.config["data"]["source"]))
    frame = frame.tail(args.last or 10)
    if args.json:
        for t, row in frame.iterrows():
            print(json.dumps({"time": str(t), **{k: float(v) for k, v in row.items()}}))
    else:
        print(frame.to_string(float_format=lambda x: f"{x:.6g}"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..recipes import price_report as report
    from ..recipes.prices import VARIANTS

    if args.threads:
        torch.set_num_threads(args.threads)
    kinds = name_list(args.labels, report.KINDS, "--labels")
    models = name_list(args.models, tuple(VARIANTS), "--models")
    bars = _bars(args.data)
    source = args.data or "eurusd-h1"
    started = time.perf_counter()
    try:
        result = report.run(bars, args.out, source=source, kinds=kinds, models=models,
                            seeds=tuple(range(args.seeds)), window=args.window,
                            train_size=args.train_size, test_size=args.test_size,
                            epochs=args.epochs, cost=args.cost,
                            workers=args.jobs or _cores())  # fmt: skip
    except ValueError as err:
        raise UserError(str(err)) from None
    print("\n".join(result.summary))
    print(f"\nreport in {result.path} ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cost(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be a fraction of the price in [0, 1), got {text!r}")
    return value


def register(sub) -> None:
    p = sub.add_parser("report", help="run a whole comparison and write a Markdown report")
    what = p.add_subparsers(dest="report", required=True)
    r = what.add_parser("prices", help="attention against LSTM, CNN, MLP, DLinear and naive "
                        "baselines on a price series, walk-forward")  # fmt: skip
    r.add_argument("--data", type=path, help="a CSV of OHLCV bars or a series name "
                   "(eurusd-h1, the default; sp500-d1)")  # fmt: skip
    r.add_argument("--out", type=path, default="reports/prices", help="directory of report.md, "
                   "results.json and the PNGs (default: reports/prices)")  # fmt: skip
    r.add_argument("--labels", help="comma-separated targets (default: fractal,direction,return)")
    r.add_argument("--models", help="comma-separated models (default: all)")
    r.add_argument("--seeds", type=positive_int, default=3, help="seeds per model and fold")
    r.add_argument("--epochs", type=positive_int, default=6)
    r.add_argument("--window", type=positive_int, default=20, help="bars per window")
    r.add_argument("--train-size", type=positive_int, help="training windows per fold "
                   "(default: 2000, at most 40%% of the bars)")  # fmt: skip
    r.add_argument("--test-size", type=positive_int, help="test bars per fold, a refit every "
                   "this many bars (default: 250, fewer where that leaves under 4 "
                   "folds, more where it makes over 12)")  # fmt: skip
    r.add_argument("--cost", type=_cost, default=1e-4, help="cost per unit of position change, "
                   "a fraction of the price (default: 0.0001)")  # fmt: skip
    r.add_argument("--jobs", type=positive_int, help="models trained at a time, each in its own "
                   "process with one thread (default: the CPU cores; 1: in this process, with "
                   "--threads)")  # fmt: skip
    r.add_argument("--threads", type=positive_int)
    r.set_defaults(func=cmd_report)
