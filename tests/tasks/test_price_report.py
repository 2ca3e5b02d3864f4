"""The price report: one call from bars to a Markdown report whose first lines give the
verdict, with its tables, JSON and pictures; a random walk is never reported as beaten."""

import json

import numpy as np
import pytest

from attnkit.recipes import price_report as rep
from attnkit.recipes import prices as sc
from reference import random_walk_bars

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("report")
    bars = random_walk_bars(760, 3)
    return rep.run(
        bars,
        out,
        source="a random walk",
        kinds=("fractal", "return"),
        models=("attention", "mlp"),
        seeds=(0, 1),
        train_size=300,
        test_size=120,
        epochs=2,
        progress=False,
    )


def test_the_first_lines_say_attention_did_not_beat_a_random_walks_baselines(report):
    text = report.path.read_text(encoding="utf-8")
    first = text.splitlines()[:4]
    assert first[0] == "# Self-attention against naive baselines: a random walk"
    assert "**No: attention did not beat the naive baselines**" in first[2]
    assert not report.attention_won and not any(report.claims.values())
    assert set(report.claims) == {
        (k, m) for k in ("fractal", "return") for m in ("attention", "mlp")
    }
    # four comparisons: each interval is widened to 1 - 0.05 / 4
    assert report.level == pytest.approx(1 - 0.05 / 4)
    assert "98.75% bootstrap intervals" in text


def test_every_model_and_baseline_has_each_metric_with_an_interval(report):
    text = report.path.read_text(encoding="utf-8")
    for name in (
        "attention",
        "mlp",
        "half-fractal (baseline)",
        "always-none (baseline)",
        "zero (baseline)",
        "persistence (baseline)",
    ):
        assert f"| {name} |" in text
    results = json.loads((report.path.parent / "results.json").read_text())
    frac = results["targets"]["fractal"]
    for name, values in frac["values"].items():
        assert set(values) == set(rep.METRICS["fractal"]), name
        for iv in values.values():
            assert iv["low"] <= iv["mean"] <= iv["high"] or np.isnan(iv["mean"])
    assert frac["best_baseline"] == report.comparisons["fractal"].best_baseline
    assert frac["differences"]["attention"]["beats_baselines"] is False


def test_the_pictures_are_written_and_linked(report):
    from PIL import Image

    text = report.path.read_text(encoding="utf-8")
    for name in (
        "equity_fractal.png",
        "confusion_fractal.png",
        "attention_fractal.png",
        "equity_return.png",
        "attention_return.png",
    ):
        assert f"]({name})" in text
        with Image.open(report.path.parent / name) as img:
            assert img.size[0] > 300 and img.size[1] > 200
    assert not (report.path.parent / "confusion_return.png").exists()  # no classes to confuse


def test_a_claim_needs_the_score_and_the_money():
    # a model better on the primary metric that loses money against a baseline is no win
    folds = [
        sc.FoldScores(np.arange(4), np.array([1, 0, 1, 0]), np.full(4, 0.01)) for _ in range(5)
    ]
    comp = sc.Comparison(
        "direction", {}, {}, "majority", {}, models=["m"], folds=folds, baselines=["majority"]
    )
    for f in range(5):
        for name, acc, money in (("m", 0.9, -0.02), ("majority", 0.5, 0.04)):
            comp.scores.setdefault(name, []).append({"accuracy": acc + 0.01 * f, "pnl": money})
            comp.units.setdefault(name, []).append((f, 0))
    assert comp.difference("m", "accuracy").low > 0
    assert comp.beats_baseline("m")  # no predictions kept: the primary metric alone
    comp.predictions = {"m": [np.eye(2)[[1, 1, 1, 1]]] * 5, "majority": [np.eye(2)[[1] * 4]] * 5}
    assert not comp.beats_baseline("m")


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown targets"):
        rep.run(random_walk_bars(50, 0), "/nonexistent", kinds=("volatility",))
    with pytest.raises(ValueError, match="no models"):
        rep.run(random_walk_bars(50, 0), "/nonexistent", models=())
