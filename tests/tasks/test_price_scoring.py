"""Scoring of price predictions: baselines, positions and P&L, metrics, bootstrap intervals."""

import numpy as np
import pytest

from attnkit.recipes import prices as sc


def test_baselines_predict_what_their_names_say():
    r = np.array([0.01, -0.02, 0.0, 0.03])
    none = sc.baseline("always-none", "fractal", np.array([0, 1]), r, 3)
    assert (none.argmax(1) == 0).all() and np.allclose(none.sum(1), 1)
    major = sc.baseline("majority", "fractal", np.array([0, 0, 2, 2, 2, 1]), r, 3)
    assert np.allclose(major, [[2 / 6, 1 / 6, 3 / 6]] * 4)
    persist = sc.baseline("persistence", "direction", np.array([0, 1]), r, 2)
    assert persist.argmax(1).tolist() == [1, 0, 0, 1]
    assert np.array_equal(sc.baseline("persistence", "return", np.array([]), r, 1), r)
    assert np.array_equal(sc.baseline("zero", "return", np.array([]), r, 1), np.zeros(4))
    with pytest.raises(ValueError, match="not one of"):
        sc.baseline("zero", "fractal", np.array([0]), r, 3)


def test_pnl_follows_the_positions_and_charges_every_change():
    probs = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)  # buy buy sell none
    nxt = np.array([0.01, 0.02, -0.03, 0.05])
    assert sc.positions("fractal", probs).tolist() == [1, 1, -1, 0]
    # enter +1 (1), hold, flip to -1 (2), flatten (1): 4 units of turnover
    gains = sc.pnl("fractal", probs, nxt, cost=0.001)
    assert np.allclose(gains, [0.01 - 0.001, 0.02, 0.03 - 0.002, 0.0 - 0.001])
    assert sc.positions("return", np.array([-0.2, 0.0, 0.3])).tolist() == [-1, 0, 1]


def test_classification_metrics_by_hand():
    truth = np.array([0, 0, 1, 2, 1, 0])
    chosen = np.array([0, 1, 1, 0, 2, 0])
    probs = np.eye(3)[chosen]
    m = sc.metrics("fractal", probs, truth, np.zeros(6), cost=0.0)
    assert m["accuracy"] == pytest.approx(3 / 6)
    # signals given at bars 1, 2, 4: only bar 2 right; real turning points 2, 3, 4: 3 and 4 missed
    assert m["hit_rate"] == pytest.approx(1 / 3)
    assert m["missed_signals"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert 0 <= m["auc"] <= 1 and 0 <= m["macro_f1"] <= 1


def test_return_metrics_and_a_perfect_forecast():
    truth = np.array([0.01, -0.02, 0.03, 0.0])
    m = sc.metrics("return", truth.copy(), truth, truth, cost=0.0)
    assert m["mse"] == 0 and m["mae"] == 0 and m["directional_accuracy"] == 1
    assert m["pnl"] == pytest.approx(np.abs(truth).sum())


def test_bootstrap_interval_covers_zero_for_noise_and_not_for_a_real_shift():
    rng = np.random.default_rng(3)
    noise = sc.bootstrap_interval(rng.normal(0, 1, 200))
    assert noise.low < 0 < noise.high and not noise.excludes_zero
    shifted = sc.bootstrap_interval(rng.normal(1, 1, 200))
    assert shifted.excludes_zero and shifted.low > 0.5
    assert np.isnan(sc.bootstrap_interval([np.nan]).mean)


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
            a = sc.metrics("return", sc.baseline("persistence", "return", [], last[fold], 1),
                           nxt[fold], nxt[fold], cost=0.0)  # fmt: skip
            b = sc.metrics("return", np.full(len(fold), 1e-9), nxt[fold], nxt[fold], cost=0.0)
            diffs.append(a["directional_accuracy"] - b["directional_accuracy"])
        claims += sc.bootstrap_interval(diffs).excludes_zero
    assert claims <= 3  # a 95% interval may exclude 0 by chance about once in 20
