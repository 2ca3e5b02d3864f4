"""Price series: OHLCV bars, indicators computed without look-ahead, targets and walk-forward
folds with a purge gap.

Bars are a pandas DataFrame with a sorted, unique DatetimeIndex and the float columns ``open``,
``high``, ``low``, ``close`` and ``volume``. They come from a user's CSV (:func:`read_ohlcv`
recognises the usual column names and date layouts) or from packages on PyPI that ship real
series (:func:`load_series`): EURUSD hourly bars from ``backtesting`` (AGPL: an optional
dependency, never copied here) and S&P 500 daily bars from ``arch``.

Every feature at bar t is a function of bars 0..t only (rolling and exponential windows run
forwards), so a model that sees the window ending at t sees nothing later. Targets look ahead
by their ``horizon``: a Bill Williams fractal at bar t is confirmed two bars later (it needs
the highs/lows of t+1 and t+2), the next-bar direction and return one bar later. The
walk-forward folds keep a gap of at least window + horizon bars between the last training
target and the first test window (López de Prado 2018, ch. 7), and every test bar is scored
exactly once.

Indicators follow their usual definitions (the ``ta`` package's, which the tests compare
against): RSI and ATR with Wilder's smoothing (Wilder 1978), CCI with Lambert's 0.015 constant
(Lambert 1980), MACD 12/26/9 (Appel).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLASSES",
    "COLUMNS",
    "FEATURES",
    "SERIES",
    "TARGETS",
    "WINDOW",
    "Fold",
    "PricesError",
    "features",
    "first_end",
    "load_series",
    "log_returns",
    "outputs",
    "read_ohlcv",
    "targets",
    "walk_forward",
]

COLUMNS = ("open", "high", "low", "close", "volume")
# names found in exported bars (MetaTrader, Yahoo, Dukascopy, Stooq, backtesting.py)
_ALIASES = {
    "open": ("open", "o", "open price", "opening"),
    "high": ("high", "h", "high price", "max"),
    "low": ("low", "l", "low price", "min"),
    "close": ("close", "c", "close price", "last", "closing", "price"),
    "volume": ("volume", "vol", "v", "tickvol", "tick volume", "tick_volume", "real_volume"),
}
_TIME_NAMES = (
    "datetime",
    "date time",
    "timestamp",
    "time",
    "date",
    "gmt time",
    "local time",
    "dt",
    "<dtyyyymmdd>",
    "<date>",
)
FEATURES = (
    "body",
    "upper_shadow",
    "lower_shadow",
    "range",
    "log_return",
    "log_volume",
    "rsi",
    "cci",
    "atr",
    "macd",
    "macd_signal",
    "macd_hist",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)
TARGETS = {"fractal": 2, "direction": 1, "return": 1}  # name: bars the label looks ahead
FRACTAL_CLASSES = ("none", "buy", "sell")  # buy: a down fractal (a low), sell: an up fractal
CLASSES = {"fractal": FRACTAL_CLASSES, "direction": ("down", "up"), "return": ()}  # () regression
WINDOW = 20  # bars per window: the default of `attnkit train prices` and of the report


def outputs(kind: str) -> int:
    """The scores a model of target ``kind`` gives per window: its classes, or 1 (a return)."""
    if kind not in TARGETS:
        raise PricesError(f"unknown target {kind!r}; expected one of {', '.join(TARGETS)}")
    return len(CLASSES[kind]) or 1


class PricesError(ValueError):
    """Bars that cannot be read or used, with what to do about it."""


def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the prices extra
        raise PricesError('price series need pandas: pip install "attnkit[prices]"') from None
    return pd


def read_ohlcv(source: str | Path | Any, *, sep: str | None = None):
    """Bars from a CSV file (or a file-like object): columns named open/high/low/close[/volume]
    in any case, or their usual abbreviations, and the time in one column (``Date``,
    ``Datetime``, ``Gmt time``, ...) or split into a date and a time column. Without volume it
    is 0. Returns a DataFrame indexed by time, sorted, with float columns :data:`COLUMNS`.

    Raises PricesError naming the problem: a missing column, unparseable times or prices,
    repeated times, a high below the low, or fewer than two bars.
    """
    pd = _pandas()
    blank = b"\xef\xbb\xbf \t\r\n"  # a byte-order mark and white space: nothing
    if isinstance(source, str | Path) and Path(source).is_file() and not _head(source).strip(blank):
        raise PricesError(f"{source}: no bars (the file is empty)")
    try:  # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark
        raw = pd.read_csv(source, sep=sep, engine="python", encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise PricesError(f"cannot read {source}: it is not UTF-8 text ({err.reason})") from None
    except (OSError, ValueError, pd.errors.ParserError, csv.Error) as err:
        raise PricesError(f"cannot read {source}: {err}") from None
    if raw.empty:
        raise PricesError(f"{source}: no bars (the file has no rows under its header)")
    return _frame(raw, str(source))


def _head(path: str | Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def _frame(raw, what: str):
    pd = _pandas()
    names = {str(c).lstrip("\ufeff").strip().lower().strip("<>"): c for c in raw.columns}
    cols = {}
    for col, aliases in _ALIASES.items():
        found = next((names[a] for a in aliases if a in names), None)
        if found is None and col != "volume":
            raise PricesError(
                f"{what}: no {col!r} column among {list(raw.columns)} "
                f"(accepted names: {', '.join(aliases)})"
            )
        cols[col] = found
    index = _times(raw, names, what)
    out = pd.DataFrame(index=index)
    for col, name in cols.items():
        values = raw[name] if name is not None else pd.Series(0.0, index=raw.index)
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise PricesError(
                f"{what}: {col} is not a number in {len(bad)} row(s), first at "
                f"row {bad[0] + 1} ({values.iloc[bad[0]]!r})"
            )
        out[col] = numbers
    for col in COLUMNS:  # a zero or negative price would silently cut the series at its log
        values = out[col].to_numpy()
        wrong = np.flatnonzero(values < 0 if col == "volume" else values <= 0)
        if len(wrong):
            first = int(wrong[0])
            must = (
                ">= 0" if col == "volume" else "> 0 (a missing bar is left out, not written as 0)"
            )
            raise PricesError(
                f"{what}: {col} is {out[col].iloc[first]:g} at row {first + 1} "
                f"({out.index[first]}); it must be {must}"
            )
    return _checked(out.sort_index(kind="stable"), what)


def _times(raw, names: dict, what: str):
    pd = _pandas()
    col = next((names[n.strip("<>")] for n in _TIME_NAMES if n.strip("<>") in names), None)
    if col is None and isinstance(raw.index, pd.DatetimeIndex):
        return raw.index
    if col is None:
        raise PricesError(
            f"{what}: no time column among {list(raw.columns)} (accepted: Date, "
            "Datetime, Time, Timestamp, Gmt time, or Date and Time)"
        )
    values = raw[col].astype(str)
    time_col = names.get("time")
    if time_col is not None and time_col != col:  # a date column and a time column
        values = values + " " + raw[time_col].astype(str)
    dayfirst = _day_first(values, what, col)
    try:
        stamps = pd.to_datetime(values, format="mixed", dayfirst=dayfirst)
    except (ValueError, TypeError) as err:
        raise PricesError(f"{what}: cannot read the times in column {col!r}: {err}") from None
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.DatetimeIndex(stamps, name="time")


_YEAR_FIRST = re.compile(r"\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})(?!\d)")


def _day_first(values, what: str, col: str) -> bool:
    """Whether the dates of a time column are day-first (31/01/2024) rather than month-first
    (01/31/2024), one layout for the whole column as the data say: a first field over 12 says
    day-first, a second field over 12 month-first, and where every field is 12 or less the
    layout that keeps the rows in time order. PricesError when rows disagree (both kinds of
    evidence, or year-first rows beside day/month rows) or when nothing tells the two apart."""
    layout = [
        "iso" if _YEAR_FIRST.match(v) else "dmy" if _NUMERIC_DATE.match(v) else "other"
        for v in values
    ]
    kinds = dict.fromkeys(layout)
    numeric = [i for i, k in enumerate(layout) if k == "dmy"]
    if len(kinds) > 1 and numeric:
        other = next(i for i, k in enumerate(layout) if k != "dmy")
        raise PricesError(
            f"{what}: the dates of column {col!r} are written in more than one layout (row "
            f"{numeric[0] + 1}: {values.iloc[numeric[0]]!r}, row {other + 1}: "
            f"{values.iloc[other]!r}); write them all one way, e.g. 2024-01-31 13:00"
        )
    if not numeric:
        return False
    fields = [_NUMERIC_DATE.match(values.iloc[i]).groups()[:2] for i in numeric]  # type: ignore[union-attr]
    first = next((i for i, (a, _) in zip(numeric, fields, strict=True) if int(a) > 12), None)
    second = next((i for i, (_, b) in zip(numeric, fields, strict=True) if int(b) > 12), None)
    if first is not None and second is not None:
        raise PricesError(
            f"{what}: the dates of column {col!r} disagree: row {first + 1} "
            f"({values.iloc[first]!r}) is day-first, row {second + 1} ({values.iloc[second]!r}) "
            "month-first; write them all one way, e.g. 2024-01-31 13:00"
        )
    if first is not None or second is not None:
        return first is not None
    pd = _pandas()
    ordered = {}
    for dayfirst in (True, False):
        try:
            stamps = pd.to_datetime(values, format="mixed", dayfirst=dayfirst)
        except (ValueError, TypeError):
            continue
        ordered[dayfirst] = bool(stamps.is_monotonic_increasing or stamps.is_monotonic_decreasing)
    if list(ordered.values()).count(True) == 1:
        return next(k for k, v in ordered.items() if v)
    if len(values) < 2 or all(a == b for a, b in fields):
        return False  # 01/01, 02/02, ...: the same either way
    raise PricesError(
        f"{what}: the dates of column {col!r} ({values.iloc[numeric[0]]!r}, ...) read as "
        "day-first or month-first alike; write them year first, e.g. 2024-01-31 13:00"
    )


def _checked(bars, what: str):
    if len(bars) < 2:
        raise PricesError(f"{what}: {len(bars)} bar(s); need at least 2")
    repeated = bars.index.duplicated()
    if repeated.any():
        first = bars.index[repeated][0]
        raise PricesError(f"{what}: {int(repeated.sum())} repeated time(s), first {first}")
    wrong = (bars["high"] < bars["low"]).to_numpy()
    if wrong.any():
        first = bars.index[wrong][0]
        raise PricesError(f"{what}: high below low at {first} ({int(wrong.sum())} bar(s))")
    for c in ("open", "close"):
        wrong = ((bars[c] > bars["high"]) | (bars[c] < bars["low"])).to_numpy()
        if wrong.any():
            row = bars[wrong].iloc[0]
            raise PricesError(
                f"{what}: {c} {row[c]:g} lies outside [low {row['low']:g}, high "
                f"{row['high']:g}] at {bars.index[wrong][0]} ({int(wrong.sum())} bar(s))"
            )
    return bars


SERIES = {  # name: (package, how to load, description)
    "eurusd-h1": ("backtesting", "EURUSD hourly bars, 2017-2018 (backtesting.test.EURUSD)"),
    "sp500-d1": ("arch", "S&P 500 daily bars, 1999-2018 (arch.data.sp500)"),
}


def load_series(name: str):
    """A real series from an installed package (see :data:`SERIES`); PricesError with the one
    line that installs it when the package is missing."""
    if name not in SERIES:
        raise PricesError(
            f"unknown series {name!r}; expected one of {', '.join(SERIES)} or a CSV file"
        )
    package = SERIES[name][0]
    try:
        if name == "eurusd-h1":
            from backtesting.test import EURUSD as raw  # AGPL; used where installed only
        else:
            from arch.data import sp500

            raw = sp500.load()
    except ImportError:
        extra = '"attnkit[eurusd]"' if package == "backtesting" else package
        raise PricesError(
            f"the {name} series comes with the {package} package: pip install {extra}"
        ) from None
    return _frame(raw.rename_axis("time").reset_index(), name)  # the index may have no name


# ---------------------------------------------------------------------------- indicators


def _wilder(x, n: int):
    """Wilder's smoothing: an exponential average with alpha 1/n, started after n values."""
    return x.ewm(alpha=1.0 / n, adjust=False, min_periods=n).mean()


def rsi(close, n: int = 14):
    """Relative strength index in [0, 100] (Wilder)."""
    diff = close.diff()
    gain, loss = _wilder(diff.clip(lower=0), n), _wilder(-diff.clip(upper=0), n)
    out = 100 - 100 / (1 + gain / loss)
    return out.where(loss != 0, 100.0).where(gain.notna())


def cci(high, low, close, n: int = 20, constant: float = 0.015):
    """Commodity channel index: (typical price - its mean) / (constant * mean deviation)."""
    typical = (high + low + close) / 3
    mean = typical.rolling(n, min_periods=n).mean()
    dev = typical.rolling(n, min_periods=n).apply(lambda w: np.abs(w - w.mean()).mean(), raw=True)
    return (typical - mean) / (constant * dev)


def atr(high, low, close, n: int = 14):
    """Average true range in price units, as Wilder defined it: the mean of the first n true
    ranges, then atr_t = (atr_{t-1} (n - 1) + TR_t) / n."""
    prev = close.shift(1)
    true_range = np.maximum(high, prev).fillna(high) - np.minimum(low, prev).fillna(low)
    seeded = true_range.copy()
    seeded.iloc[: n - 1] = np.nan
    if len(seeded) >= n:
        seeded.iloc[n - 1] = true_range.iloc[:n].mean()
    return seeded.ewm(alpha=1.0 / n, adjust=False).mean()


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9):
    """(MACD line, signal line, histogram): exponential averages of spans fast and slow."""
    line = (
        close.ewm(span=fast, adjust=False, min_periods=fast).mean()
        - close.ewm(span=slow, adjust=False, min_periods=slow).mean()
    )
    sig = line.ewm(span=signal, adjust=False, min_periods=signal).mean()
    return line, sig, line - sig


def features(bars) -> np.ndarray:
    """(T, len(FEATURES)) float32 features, row t computed from bars 0..t only: the bar's body
    and shadows relative to its open, its range, log return and log volume, RSI, CCI, ATR (over
    the close), MACD (over the close) and the hour and weekday as angles. Rows before the
    indicators have enough history are NaN (:func:`first_valid` says where they end)."""
    o, h, low, c, v = (bars[k] for k in COLUMNS)
    line, sig, hist = macd(c)
    hour = bars.index.hour + bars.index.minute / 60
    day = bars.index.day_of_week
    cols = [
        (c - o) / o,
        (h - np.maximum(o, c)) / o,
        (np.minimum(o, c) - low) / o,
        (h - low) / o,
        np.log(c / c.shift(1)),
        np.log1p(v.clip(lower=0)),
        rsi(c) / 100,
        cci(h, low, c) / 100,
        atr(h, low, c) / c,
        line / c,
        sig / c,
        hist / c,
        np.sin(2 * math.pi * hour / 24),
        np.cos(2 * math.pi * hour / 24),
        np.sin(2 * math.pi * day / 7),
        np.cos(2 * math.pi * day / 7),
    ]
    return np.stack([np.asarray(col, dtype=np.float64) for col in cols], 1).astype(np.float32)


def first_valid(feats: np.ndarray) -> int:
    """The first row from which every feature row is finite."""
    bad = np.flatnonzero(~np.isfinite(feats).all(1))
    return 0 if not len(bad) else int(bad[-1]) + 1


# ---------------------------------------------------------------------------- targets


def targets(bars, kind: str = "fractal") -> np.ndarray:
    """The label of each bar t, known at bar t + TARGETS[kind] (NaN / -1 where that bar does
    not exist yet):

    - ``fractal``: 1 (buy) if bar t is a down fractal (its low below the lows of the two bars
      before and after), 2 (sell) if an up fractal (high above theirs), 0 (none) otherwise;
      both at once counts as none. int64, -1 for the last two bars.
    - ``direction``: 1 if the next close is above this one, else 0; -1 for the last bar.
    - ``return``: log(next close / close), float64, NaN for the last bar.
    """
    if kind not in TARGETS:
        raise PricesError(f"unknown target {kind!r}; expected one of {', '.join(TARGETS)}")
    c = bars["close"].to_numpy(dtype=float)
    if kind == "return":
        out = np.full(len(c), np.nan)
        out[:-1] = np.log(c[1:] / c[:-1])
        return out
    if kind == "direction":
        out = np.full(len(c), -1, dtype=np.int64)
        out[:-1] = (c[1:] > c[:-1]).astype(np.int64)
        return out
    h, low = bars["high"].to_numpy(dtype=float), bars["low"].to_numpy(dtype=float)
    out = np.full(len(c), -1, dtype=np.int64)
    n = len(c)
    for t in range(n - 2):
        if t < 2:
            out[t] = 0  # fewer than two bars before it: not a fractal by definition
            continue
        around = [t - 2, t - 1, t + 1, t + 2]
        up = all(h[t] > h[i] for i in around)
        down = all(low[t] < low[i] for i in around)
        out[t] = 1 if down and not up else 2 if up and not down else 0
    return out


def log_returns(bars) -> np.ndarray:
    """(n,) the log return of each bar, close t-1 -> t (NaN for the first bar)."""
    return np.r_[np.nan, np.diff(np.log(bars["close"].to_numpy(dtype=float)))]


WARMUP_BARS = 64  # more than any indicator needs before it is defined (MACD: 33)


def first_end(feats: np.ndarray, window: int) -> int:
    """The first bar a window of ``window`` bars with every feature valid can end at.
    PricesError where a feature is undefined after the indicators' warm-up (a price that does
    not move for RSI's 14 bars, a zero range for CCI's 20): every bar before it would be
    dropped."""
    start = first_valid(feats)
    if start > WARMUP_BARS:
        row = start - 1
        cols = [FEATURES[j] for j in np.flatnonzero(~np.isfinite(feats[row]))]
        raise PricesError(
            f"the feature(s) {', '.join(cols)} are undefined at bar {row + 1} of {len(feats)}, "
            "after the indicators' warm-up: the prices there do not move (a constant price "
            "has no RSI or CCI); every bar before it would be dropped"
        )
    return start + window - 1


def half_fractal(bars) -> np.ndarray:
    """The naive rule for the fractal target, known at bar t: the half of the fractal that has
    already happened. 1 (buy) if bar t's low is below the lows of the two bars before it, 2
    (sell) if its high is above their highs, 0 otherwise (both, or the first two bars). On a
    random walk this rule is as good as any model can be: the other half lies in the future."""
    h, low = bars["high"].to_numpy(dtype=float), bars["low"].to_numpy(dtype=float)
    out = np.zeros(len(h), dtype=np.int64)
    if len(h) > 2:
        down = (low[2:] < low[1:-1]) & (low[2:] < low[:-2])
        up = (h[2:] > h[1:-1]) & (h[2:] > h[:-2])
        out[2:] = np.where(down & ~up, 1, np.where(up & ~down, 2, 0))
    return out


# ---------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class Fold:
    """Bars whose windows end in ``train`` (start, stop) train the model; those ending in
    ``test`` are scored. ``gap`` bars between them belong to neither."""

    train: tuple[int, int]
    test: tuple[int, int]

    @property
    def gap(self) -> int:
        return self.test[0] - self.train[1]


def walk_forward(
    n: int,
    *,
    start: int,
    window: int,
    horizon: int,
    train_size: int,
    test_size: int,
    expanding: bool = False,
) -> Iterator[Fold]:
    """Rolling-origin folds over bars ``start``..n-1 (the last ``horizon`` bars have no label
    and are never scored): each fold trains on the ``train_size`` window ends before a gap of
    ``window + horizon`` bars and tests the next ``test_size`` ends; the next fold starts where
    that test ended (a refit every ``test_size`` bars). ``expanding`` keeps all earlier bars in
    training. The test ranges tile the scored bars: each is scored exactly once, the last fold
    is shorter rather than dropped.

    The gap: a training target at bar i uses bars up to i + horizon, and the first test window
    starts window - 1 bars before its end, so with gap >= window + horizon no bar informs both a
    training label and a test input.
    """
    for name, value in (("window", window), ("train_size", train_size), ("test_size", test_size)):
        if value < 1:
            raise PricesError(f"{name} must be >= 1, got {value}")
    if horizon < 0 or start < 0:
        raise PricesError("horizon and start must be >= 0")
    gap = window + horizon
    last = n - horizon  # bars start..last-1 have labels
    test_start = start + train_size + gap
    if test_start >= last:
        raise PricesError(
            f"{n} bars are too few for one fold: need more than "
            f"{start + train_size + gap + horizon} (start {start}, train "
            f"{train_size}, gap {gap}, horizon {horizon})"
        )
    while test_start < last:
        train_stop = test_start - gap
        train_begin = start if expanding else max(start, train_stop - train_size)
        test_stop = min(test_start + test_size, last)
        yield Fold((train_begin, train_stop), (test_start, test_stop))
        test_start = test_stop
