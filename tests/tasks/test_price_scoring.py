"""Scoring of price predictions: baselines, positions and P&L, metrics, bootstrap intervals."""

import numpy as np
import pytest

from attnkit.recipes import prices as sc
from attnkit.tasks import price_scores as ps
from attnkit.tasks import price_windows as pw


def test_baselines_predict_what_their_names_say():
    r = np.array([0.01, -0.02, 0.0, 0.03])
    none = ps.baseline("always-none", "fractal", np.array([0, 1]), r, 3)
    assert (none.argmax(1) == 0).all() and np.allclose(none.sum(1), 1)
    major = ps.baseline("majority", "fractal", np.array([0, 0, 2, 2, 2, 1]), r, 3)
    assert np.allclose(major, [[2 / 6, 1 / 6, 3 / 6]] * 4)
    persist = ps.baseline("persistence", "direction", np.array([0, 1]), r, 2)
    assert persist.argmax(1).tolist() == [1, 0, 0, 1]
    assert np.array_equal(ps.baseline("persistence", "return", np.array([]), r, 1), r)
    assert np.array_equal(ps.baseline("zero", "return", np.array([]), r, 1), np.zeros(4))
    with pytest.raises(ValueError, match="not one of"):
        ps.baseline("zero", "fractal", np.array([0]), r, 3)


def test_pnl_follows_the_positions_and_charges_every_change():
    probs = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)  # buy buy sell none
    nxt = np.array([0.01, 0.02, -0.03, 0.05])
    assert ps.positions("fractal", probs).tolist() == [1, 1, -1, 0]
    # enter +1 (1), hold, flip to -1 (2), flatten (1): 4 units of turnover
    gains = ps.pnl("fractal", probs, nxt, cost=0.001)
    assert np.allclose(gains, [0.01 - 0.001, 0.02, 0.03 - 0.002, 0.0 - 0.001])
    assert ps.positions("return", np.array([-0.2, 0.0, 0.3])).tolist() == [-1, 0, 1]


def test_classification_metrics_by_hand():
    truth = np.array([0, 0, 1, 2, 1, 0])
    chosen = np.array([0, 1, 1, 0, 2, 0])
    probs = np.eye(3)[chosen]
    m = ps.metrics("fractal", probs, truth, np.zeros(6), cost=0.0)
    assert m["accuracy"] == pytest.approx(3 / 6)
    # signals given at bars 1, 2, 4: only bar 2 right; real turning points 2, 3, 4: 3 and 4 missed
    assert m["hit_rate"] == pytest.approx(1 / 3)
    assert m["missed_signals"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert 0 <= m["auc"] <= 1 and 0 <= m["macro_f1"] <= 1


def test_return_metrics_and_a_perfect_forecast():
    truth = np.array([0.01, -0.02, 0.03, 0.0])
    m = ps.metrics("return", truth.copy(), truth, truth, cost=0.0)
    assert m["mse"] == 0 and m["mae"] == 0 and m["directional_accuracy"] == 1
    assert m["pnl"] == pytest.approx(np.abs(truth).sum())


def test_bootstrap_interval_covers_zero_for_noise_and_not_for_a_real_shift():
    rng = np.random.default_rng(3)
    noise = ps.bootstrap_interval(rng.normal(0, 1, 200))
    assert noise.low < 0 < noise.high and not noise.excludes_zero
    shifted = ps.bootstrap_interval(rng.normal(1, 1, 200))
    assert shifted.excludes_zero and shifted.low > 0.5
    assert np.isnan(ps.bootstrap_interval([np.nan]).mean)


def test_on_a_random_walk_persistence_does_not_beat_the_zero_forecast():
    # the forecasts of a random walk are all equally useless: across seeds, the interval of
    # (persistence - zero) directional accuracy and P&L differences must contain 0
    rng = np.random.default_rng(11)
    claims = 0
    for _ in range(20):
        r = rng.normal(0, 1e-3, 2001)
        last, nxt = r[:-1], r[1:]
        diffs = []
        for fold in np.array_split(np.arange(2000), 10):
            a = ps.metrics(
                "return",
                ps.baseline("persistence", "return", [], last[fold], 1),
                nxt[fold],
                nxt[fold],
                cost=0.0,
            )
            b = ps.metrics("return", np.full(len(fold), 1e-9), nxt[fold], nxt[fold], cost=0.0)
            diffs.append(a["directional_accuracy"] - b["directional_accuracy"])
        claims += ps.bootstrap_interval(diffs).excludes_zero
    assert claims <= 3  # a 95% interval may exclude 0 by chance about once in 20


def _bars(n=400, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    spread = np.abs(rng.normal(0, 5e-4, n))
    return pd.DataFrame(
        {
            "open": np.r_[close[0], close[:-1]],
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(1, 100, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="h"),
    )


def _walk(bars, kind="direction", name="attention"):
    from attnkit.tasks import prices as pr

    feats, labels = pr.features(bars), pr.targets(bars, kind)
    start = pr.first_valid(feats) + 20
    folds = list(
        pr.walk_forward(
            len(bars),
            start=start,
            window=20,
            horizon=pr.TARGETS[kind],
            train_size=150,
            test_size=60,
        )
    )
    preds = {}
    for fold in folds:
        data = pw.fold_data(feats, labels, fold, 20)
        _, pred = sc.fit_predict(
            name,
            data,
            kind,
            epochs=2,
            settings={"d_model": 16} if name == "attention" else None,
        )
        preds.update(zip(data.test_ends.tolist(), pred.tolist(), strict=True))
    return folds, preds


def test_windows_end_where_asked_and_refuse_to_start_before_the_series():
    feats = np.arange(30, dtype=float).reshape(10, 3)
    w = pw.windows(feats, np.array([4, 9]), 5)
    assert (
        w.shape == (2, 5, 3)
        and np.array_equal(w[0], feats[0:5])
        and np.array_equal(w[1], feats[5:10])
    )
    with pytest.raises(ValueError, match="cannot end"):
        pw.windows(feats, np.array([3]), 5)


def test_walk_forward_predictions_at_t_ignore_every_bar_after_t():
    import torch

    torch.set_num_threads(1)
    bars = _bars()
    folds, before = _walk(bars)
    t = folds[-1].test[0] + 10  # inside the last fold's test bars
    changed = bars.copy()
    changed.iloc[t + 1 :, :4] *= 1.5  # every price after t moves
    _, after = _walk(changed)
    kept = [i for i in before if i <= t]
    assert kept and all(before[i] == after[i] for i in kept)
    assert any(before[i] != after[i] for i in before if i > t + 2)


def test_each_test_bar_is_predicted_once_and_probabilities_sum_to_one():
    folds, preds = _walk(_bars(seed=1), name="mlp")
    ends = [i for f in folds for i in range(*f.test)]
    assert len(ends) == len(set(ends)) == len(preds)
    assert np.allclose([sum(p) for p in preds.values()], 1.0)


@pytest.mark.parametrize("kind", ["direction", "fractal"])
def test_on_a_random_walk_no_model_is_claimed_to_beat_the_baselines(kind):
    import torch

    from attnkit.tasks import prices as pr

    torch.set_num_threads(1)
    bars = _bars(n=900, seed=5)
    feats, labels = pr.features(bars), pr.targets(bars, kind)
    returns = np.r_[np.nan, np.diff(np.log(bars["close"].to_numpy()))]
    folds = list(
        pr.walk_forward(
            len(bars),
            start=pr.first_valid(feats) + 20,
            window=20,
            horizon=pr.TARGETS[kind],
            train_size=300,
            test_size=100,
        )
    )
    # the half of a fractal that has happened is known at t: a rule, not a learnt signal
    rules = {"half-fractal": pr.half_fractal(bars)} if kind == "fractal" else None
    result = sc.compare(
        feats,
        labels,
        returns,
        folds,
        kind,
        models=("attention", "mlp"),
        seeds=(0, 1),
        epochs=3,
        rules=rules,
    )
    assert result.best_baseline in (*ps.BASELINES[kind], *(rules or {}))
    assert len(result.scores["attention"]) == 2 * len(folds)
    assert len(result.scores[result.best_baseline]) == len(folds)
    for model in ("attention", "mlp"):
        assert not result.beats_baseline(model)
        iv = result.intervals[model][ps.PRIMARY[kind][0]]
        assert iv.low <= iv.mean <= iv.high


def test_half_fractal_uses_the_two_bars_before_only():
    from attnkit.tasks import prices as pr

    bars = _bars(n=60, seed=7)
    rule = pr.half_fractal(bars)
    h, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    for t in range(2, 60):
        down = low[t] < low[t - 1] and low[t] < low[t - 2]
        up = h[t] > h[t - 1] and h[t] > h[t - 2]
        assert rule[t] == (1 if down and not up else 2 if up and not down else 0)
    assert rule[:2].tolist() == [0, 0]
    later = bars.copy()
    later.iloc[31:, :4] *= 0.5
    assert np.array_equal(pr.half_fractal(later)[:31], rule[:31])
    # every true fractal is a half fractal of the same class, unless its past half was both
    # (a bar outside the two before it: which fractal it becomes is up to the bars after)
    truth = pr.targets(bars, "fractal")
    for t in np.flatnonzero(truth > 0):
        outside = low[t] < low[t - 2 : t].min() and h[t] > h[t - 2 : t].max()
        assert rule[t] == truth[t] or (rule[t] == 0 and outside)


def test_compare_bars_builds_the_experiment_and_adds_the_fractal_rule():
    import torch

    torch.set_num_threads(1)
    result = sc.compare_bars(
        _bars(n=700, seed=9),
        "fractal",
        train_size=250,
        test_size=150,
        models=["dlinear"],
        seeds=[0],
        epochs=1,
    )
    assert "half-fractal" in result.scores and "always-none" in result.scores
    folds = {u[0] for u in result.units["dlinear"]}
    assert len(folds) == len(result.scores["half-fractal"]) >= 2
    # every metric of the model has an interval of its difference from the best baseline
    assert set(result.intervals["dlinear"]) == set(result.scores["dlinear"][0])


def test_fits_in_other_processes_give_the_same_comparison():
    import torch

    torch.set_num_threads(1)
    bars = _bars(n=600, seed=2)
    kw = {"models": ("dlinear", "mlp"), "seeds": (0, 1), "epochs": 1, "keep_models": True}
    e = sc.experiment(bars, "direction", train_size=200, test_size=150)
    here = sc.compare(e.feats, e.labels, e.returns, e.folds, "direction", **kw)
    with sc.fit_pool(2) as pool:
        there = sc.compare(e.feats, e.labels, e.returns, e.folds, "direction", executor=pool, **kw)
    assert here.units == there.units and len(here.units["mlp"]) == 2 * len(e.folds)
    for name, preds in here.predictions.items():
        for a, b in zip(preds, there.predictions[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(there.fitted) == {"dlinear", "mlp"}
    x = torch.from_numpy(there.last_windows)
    with torch.no_grad():
        got = torch.softmax(there.fitted["mlp"].eval()(x).double(), -1).numpy()
    first_seed_last_fold = there.units["mlp"].index((len(e.folds) - 1, 0))
    np.testing.assert_allclose(got, there.predictions["mlp"][first_seed_last_fold], atol=1e-6)
