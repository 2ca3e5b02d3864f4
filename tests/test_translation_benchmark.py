"""The translation benchmark's paired bootstrap of chrF gains by source length."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sacrebleu")

SPEC = importlib.util.spec_from_file_location(
    "translation_length", Path(__file__).parents[1] / "benchmarks" / "translation_length.py"
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
]


def _verse(i: int, n: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] + str(k % 7) for k in range(n))


def _pairs():
    lengths = [5, 8, 12, 15, 18] * 3 + [22, 25, 31, 36] * 3 + [41, 45, 52, 60] * 3
    return [(_verse(i, n), _verse(i + 3, n)) for i, n in enumerate(lengths)]


@pytest.mark.parametrize("metric", ["chrf", "bleu"])
def test_a_model_equal_to_the_baseline_gains_nothing_anywhere(metric):
    pairs = _pairs()
    same = [_verse(i, 4) for i in range(len(pairs))]
    out = bench.gap_intervals(
        pairs, {bench.BASELINE: same, "copy": list(same)}, resamples=50, metric=metric
    )
    assert set(out) == {"copy"}  # the baseline is not compared with itself
    assert set(out["copy"]) == {"40+ minus 0-19", "40+ minus 20-39"}
    for q in out["copy"].values():
        assert q["low"] == q["median"] == q["high"] == 0.0


@pytest.mark.parametrize("metric", ["chrf", "bleu"])
def test_a_gain_on_long_verses_only_has_an_interval_above_zero(metric):
    pairs = _pairs()
    base = ["omega" for _ in pairs]
    long_only = [ref if len(src.split()) >= 40 else "omega" for src, ref in pairs]
    short_only = [ref if len(src.split()) < 20 else "omega" for src, ref in pairs]
    outputs = {bench.BASELINE: base, "long": long_only, "short": short_only}
    out = bench.gap_intervals(pairs, outputs, resamples=200, metric=metric)
    for q in out["long"].values():
        assert 0 < q["low"] <= q["median"] <= q["high"]
    assert out["short"]["40+ minus 0-19"]["high"] < 0
    assert out["short"]["40+ minus 20-39"]["median"] == pytest.approx(0.0, abs=1e-9)
