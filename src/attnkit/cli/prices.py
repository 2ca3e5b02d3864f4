"""``attnkit report prices``: a whole walk-forward comparison on a price series, written as a
Markdown report (``recipes.price_report``)."""

from __future__ import annotations

import argparse
import math
import time

import torch

from ..recipes.price_report import EPOCHS
from ..tasks.prices import WINDOW
from ..train.devices import cpu_cores
from .arguments import name_list, path, positive_int
from .errors import UserError


def _bars(data: str | None):
    from ..recipes import price_train
    from ..tasks.prices import PricesError

    try:
        return price_train.load_bars(data)
    except PricesError as err:
        raise UserError(str(err)) from None


def cmd_report(args: argparse.Namespace) -> int:
    from ..recipes import price_report as report
    from ..recipes.prices import model_variants

    if args.threads:
        torch.set_num_threads(args.threads)
    kinds = name_list(args.labels, report.KINDS, "--labels")
    models = name_list(args.models, tuple(model_variants()), "--models")
    bars = _bars(args.data)
    source = args.data or "eurusd-h1"
    started = time.perf_counter()
    try:
        result = report.run(
            bars,
            args.out,
            source=source,
            kinds=kinds,
            models=models,
            seeds=tuple(range(args.seeds)),
            window=args.window,
            train_size=args.train_size,
            test_size=args.test_size,
            epochs=args.epochs,
            cost=args.cost,
            workers=args.jobs or cpu_cores(),
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    print("\n".join(result.summary))
    print(f"\nreport in {result.path} ({(time.perf_counter() - started) / 60:.1f} min)")
    return 0


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
    r = what.add_parser(
        "prices",
        help="attention against LSTM, CNN, MLP, DLinear and naive "
        "baselines on a price series, walk-forward",
    )
    r.add_argument(
        "--data",
        type=path,
        help="a CSV of OHLCV bars or a series name (eurusd-h1, the default; sp500-d1)",
    )
    r.add_argument(
        "--out",
        type=path,
        default="reports/prices",
        help="directory of report.md, results.json and the PNGs (default: reports/prices)",
    )
    r.add_argument("--labels", help="comma-separated targets (default: fractal,direction,return)")
    r.add_argument("--models", help="comma-separated models (default: all)")
    r.add_argument("--seeds", type=positive_int, default=3, help="seeds per model and fold")
    r.add_argument("--epochs", type=positive_int, default=EPOCHS, help="epochs per fit")
    r.add_argument("--window", type=positive_int, default=WINDOW, help="bars per window")
    r.add_argument(
        "--train-size",
        type=positive_int,
        help="training windows per fold (default: 2000, at most 40%% of the bars)",
    )
    r.add_argument(
        "--test-size",
        type=positive_int,
        help="test bars per fold, a refit every "
        "this many bars (default: 250, fewer where that leaves under 4 "
        "folds, more where it makes over 12)",
    )
    r.add_argument(
        "--cost",
        type=_cost,
        default=1e-4,
        help="cost per unit of position change, a fraction of the price (default: 0.0001)",
    )
    r.add_argument(
        "--jobs",
        type=positive_int,
        help="models trained at a time, each in its own "
        "process with one thread (default: the CPU cores; 1: in this process, with "
        "--threads)",
    )
    r.add_argument("--threads", type=positive_int)
    r.set_defaults(func=cmd_report)
