"""Price series: reading bars, indicators against the ``ta`` package, no look-ahead in
features or targets, and walk-forward folds that respect the purge gap."""

import io

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
ta = pytest.importorskip("ta")

from attnkit.tasks import prices as P  # noqa: E402


def random_bars(n: int = 600, seed: int = 0, freq: str = "h"):
    """A random walk of OHLCV bars (no signal at all)."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 2e-4, n))
    spread = np.abs(rng.normal(0, 1e-3, (2, n)))
    high = np.maximum(open_, close) * (1 + spread[0])
    low = np.minimum(open_, close) * (1 - spread[1])
    index = pd.date_range("2024-01-01", periods=n, freq=freq, name="time")
    volume = rng.integers(1, 1000, n).astype(float)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


BURN_IN = 400  # seeding conventions of exponential averages differ; (13/14)^400 < 1e-12


@pytest.fixture(scope="module")
def bars():
    return random_bars(1000)


def test_rsi_matches_ta(bars):
    want = ta.momentum.RSIIndicator(bars["close"], window=14).rsi()
    got = P.rsi(bars["close"])
    np.testing.assert_allclose(got[BURN_IN:], want[BURN_IN:], rtol=1e-7)
    assert got.iloc[:14].isna().all() and got.iloc[14:].between(0, 100).all()


def test_cci_matches_ta(bars):
    want = ta.trend.CCIIndicator(
        bars["high"], bars["low"], bars["close"], window=20, constant=0.015
    ).cci()
    got = P.cci(bars["high"], bars["low"], bars["close"])
    np.testing.assert_allclose(got[19:], want[19:], rtol=1e-9)  # a plain rolling window
    assert got.iloc[:19].isna().all()


def test_atr_matches_ta_from_its_first_value(bars):
    want = ta.volatility.AverageTrueRange(
        bars["high"], bars["low"], bars["close"], window=14
    ).average_true_range()
    got = P.atr(bars["high"], bars["low"], bars["close"])
    np.testing.assert_allclose(got[13:], want[13:], rtol=1e-9)  # Wilder's seed: same from t=13


def test_macd_matches_ta(bars):
    ref = ta.trend.MACD(bars["close"], window_slow=26, window_fast=12, window_sign=9)
    line, signal, hist = P.macd(bars["close"])
    for got, want in ((line, ref.macd()), (signal, ref.macd_signal()), (hist, ref.macd_diff())):
        np.testing.assert_allclose(got[40:], want[40:], rtol=1e-9, atol=1e-15)


def test_rsi_of_a_series_that_only_rises_is_100():
    close = pd.Series(np.arange(1.0, 40.0))
    assert (P.rsi(close).iloc[14:] == 100).all()


@pytest.mark.property
@pytest.mark.parametrize("t", [30, 200, 598])
def test_changing_later_bars_never_changes_features_or_targets_at_t(bars, t):
    base = P.features(bars)
    later = bars.copy()
    rng = np.random.default_rng(t)
    later.iloc[t + 1 :, :4] *= rng.uniform(0.9, 1.1, (len(bars) - t - 1, 1))  # every later bar
    later["high"] = later[["open", "high", "close"]].max(axis=1)
    later["low"] = later[["open", "low", "close"]].min(axis=1)
    later.iloc[t + 1 :, 4] += 7
    changed = P.features(later)
    np.testing.assert_array_equal(changed[: t + 1], base[: t + 1])
    assert not np.allclose(changed[t + 1 :], base[t + 1 :], equal_nan=True)
    for kind, horizon in P.TARGETS.items():
        moved = bars.copy()
        moved.iloc[t + horizon + 1 :, :4] *= 1.05 if t + horizon + 1 < len(bars) else 1
        np.testing.assert_array_equal(
            P.targets(moved, kind)[: t + 1], P.targets(bars, kind)[: t + 1]
        )


def test_features_start_finite_after_the_longest_indicator(bars):
    feats = P.features(bars)
    assert feats.shape == (len(bars), len(P.FEATURES)) and feats.dtype == np.float32
    start = P.first_valid(feats)
    assert 26 <= start <= 40 and np.isfinite(feats[start:]).all()


def test_fractals_by_hand():
    high = [1, 2, 5, 2, 1, 1, 1, 1, 1, 1]
    low = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    bars = pd.DataFrame(
        {
            "open": 1.0,
            "high": np.array(high, float) + 1,
            "low": np.array(low, float),
            "close": 1.0,
            "volume": 0.0,
        },
        index=pd.date_range("2024-01-01", periods=10, freq="D"),
    )
    labels = P.targets(bars, "fractal")
    assert labels.tolist() == [0, 0, 2, 0, 0, 1, 0, 0, -1, -1]  # sell at the high, buy at the low
    direction = P.targets(random_bars(5), "direction")
    assert direction[-1] == -1 and set(direction[:-1].tolist()) <= {0, 1}
    returns = P.targets(random_bars(5), "return")
    assert np.isnan(returns[-1]) and np.isfinite(returns[:-1]).all()


@pytest.mark.property
@pytest.mark.parametrize("expanding", [False, True])
@pytest.mark.parametrize(
    "n,window,horizon,train,test",
    [(1000, 20, 2, 300, 97), (500, 5, 1, 50, 50), (200, 20, 2, 100, 500)],
)
def test_folds_tile_the_test_bars_and_keep_the_purge_gap(
    n, window, horizon, train, test, expanding
):
    folds = list(
        P.walk_forward(
            n,
            start=30,
            window=window,
            horizon=horizon,
            train_size=train,
            test_size=test,
            expanding=expanding,
        )
    )
    scored = np.concatenate([np.arange(*f.test) for f in folds])
    assert len(scored) == len(np.unique(scored))  # each test bar once
    assert scored[0] == 30 + train + window + horizon and scored[-1] == n - horizon - 1
    assert np.array_equal(scored, np.arange(scored[0], n - horizon))  # no bar dropped
    for f in folds:
        assert f.gap >= window + horizon and f.train[0] >= 30 and f.train[1] > f.train[0]
        # the last training label looks at bars up to train[1] - 1 + horizon; the first test
        # window starts at test[0] - window + 1: they never meet
        assert f.train[1] - 1 + horizon < f.test[0] - window + 1
        if not expanding:
            assert f.train[1] - f.train[0] <= train


def test_too_few_bars_for_a_fold_says_so():
    with pytest.raises(P.PricesError, match="too few"):
        list(P.walk_forward(100, start=0, window=20, horizon=2, train_size=80, test_size=10))


CSV = """Date,Time,Open,High,Low,Close,Volume
2024.01.02,10:00,1.10,1.12,1.09,1.11,100
2024.01.02,09:00,1.09,1.11,1.08,1.10,120
2024.01.02,11:00,1.11,1.13,1.10,1.12,90
"""


def test_read_ohlcv_recognises_columns_and_split_times():
    bars = P.read_ohlcv(io.StringIO(CSV))
    assert list(bars.columns) == list(P.COLUMNS)
    assert bars.index.is_monotonic_increasing and bars.index[0].hour == 9
    assert bars["close"].tolist() == [1.10, 1.11, 1.12]
    other = "timestamp;o;h;l;c\n2024-01-02T09:00:00Z;1;2;0.5;1.5\n2024-01-02T10:00:00Z;1;2;0.5;1\n"
    bars = P.read_ohlcv(io.StringIO(other), sep=";")
    assert bars["volume"].tolist() == [0.0, 0.0] and bars.index.tz is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("Date,Open,High,Low\n2024-01-01,1,2,0\n2024-01-02,1,2,0\n", "no 'close' column"),
        ("Open,High,Low,Close\n1,2,0,1\n1,2,0,1\n", "no time column"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,x\n2024-01-02,1,2,0.5,1\n", "not a number"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1\n2024-01-01,1,2,0.5,1\n", "repeated time"),
        (
            "Date,Open,High,Low,Close\n2024-01-01,1,0.5,2,1\n2024-01-02,1,2,0.5,1\n",
            "high below low",
        ),
        ("Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1\n", "need at least 2"),
        (
            "Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1\n2024-01-02,1,2,0,1\n",
            "low is 0 at row 2",
        ),
        (
            "Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,-1\n2024-01-02,1,2,.5,1\n",
            "close is -1 at row 1",
        ),
        (
            "Date,Open,High,Low,Close,Volume\n2024-01-01,1,2,.5,1,-3\n2024-01-02,1,2,.5,1,1\n",
            "volume is -3",
        ),
        (
            "Date,Open,High,Low,Close\n2024-01-01,3,2,0.5,1\n2024-01-02,1,2,.5,1\n",
            "open 3 lies outside",
        ),
        (
            "Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,0.4\n2024-01-02,1,2,.5,1\n",
            "close 0.4 lies outside",
        ),
        ("Date,Open,High,Low,Close\n", "no bars"),
        (
            "Date,Open,High,Low,Close\n2024-01-31,1,2,.5,1\n01/02/2024,1,2,.5,1\n",
            "more than one layout",
        ),
        ("Date,Open,High,Low,Close\n13/01/2024,1,2,.5,1\n01/14/2024,1,2,.5,1\n", "disagree"),
        (
            "Date,Open,High,Low,Close\n01/02/2024,1,2,.5,1\n02/01/2024,1,2,.5,1\n",
            "day-first or month-first alike",
        ),
        (
            "Date,Open,High,Low,Close\nnot a date,1,2,0.5,1\n2024-01-02,1,2,0.5,1\n",
            "cannot read the times",
        ),
    ],
)
def test_bad_csv_is_refused_with_the_reason(text, message):
    with pytest.raises(P.PricesError, match=message):
        P.read_ohlcv(io.StringIO(text))


def test_a_missing_series_package_says_how_to_install_it(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_backtesting(name, *args, **kw):
        if name.startswith("backtesting"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_backtesting)
    with pytest.raises(P.PricesError, match=r'pip install "attnkit\[eurusd\]"'):
        P.load_series("eurusd-h1")
    with pytest.raises(P.PricesError, match="unknown series"):
        P.load_series("gold")


def test_packaged_series_with_an_unnamed_time_index_are_read(monkeypatch):
    # backtesting.test.EURUSD is indexed by unnamed timestamps with capitalised columns
    import sys
    import types

    idx = pd.date_range("2018-01-01", periods=5, freq="h")
    frame = pd.DataFrame(
        {
            "Open": [1.0] * 5,
            "High": [1.2] * 5,
            "Low": [0.9] * 5,
            "Close": [1.1] * 5,
            "Volume": [10.0] * 5,
        },
        index=idx,
    )
    stand_in = types.ModuleType("backtesting.test")
    stand_in.EURUSD = frame
    monkeypatch.setitem(sys.modules, "backtesting", types.ModuleType("backtesting"))
    monkeypatch.setitem(sys.modules, "backtesting.test", stand_in)
    bars = P.load_series("eurusd-h1")
    assert list(bars.columns) == list(P.COLUMNS) and (bars.index == idx).all()
    assert bars["close"].tolist() == [1.1] * 5


@pytest.mark.parametrize(
    "stamps, first",
    [
        ([f"{d:02d}/01/2024 {h:02d}:00" for d in range(10, 15) for h in (6, 18)], 10),
        ([f"01/{d:02d}/2024 {h:02d}:00" for d in range(10, 15) for h in (6, 18)], 10),
        ([f"{d:02d}.01.2024 {h:02d}:00:00.000" for d in range(10, 15) for h in (6, 18)], 10),
        ([f"{d:02d}/01/2024 {h:02d}:00" for d in range(1, 14) for h in (6, 18)], 1),
    ],
    ids=["day-first", "month-first", "dotted", "from-the-first"],
)
def test_dates_are_read_in_the_one_layout_the_column_uses(stamps, first):
    rows = "".join(f"{t},1,2,0.5,1\n" for t in stamps)
    bars = P.read_ohlcv(io.StringIO("Date,Open,High,Low,Close\n" + rows))
    assert bars.index.month.unique().tolist() == [1]  # all of January, none misread as a month
    assert bars.index.is_monotonic_increasing and len(bars) == len(stamps)
    assert bars.index[0].day == first


def test_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(CSV, encoding="utf-8-sig")
    assert P.read_ohlcv(path)["close"].tolist() == [1.10, 1.11, 1.12]


def test_where_every_field_is_12_or_less_the_time_order_decides_the_layout():
    rows = "".join(f"{d},1,2,0.5,1\n" for d in ("11/01/2024", "12/01/2024", "01/02/2024"))
    bars = P.read_ohlcv(io.StringIO("Date,Open,High,Low,Close\n" + rows))
    assert [t.strftime("%m-%d") for t in bars.index] == ["01-11", "01-12", "02-01"]
