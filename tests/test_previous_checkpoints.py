"""Checkpoints written by an earlier attnkit (``tests/fixtures/checkpoints``, made by
``tests/fixtures/make_checkpoints.py``) load with this one and predict what they predicted
then: one of every kind, seq2seq RNN and Transformer, language models, translation, prices, a
text classifier, an image classifier and a captioner."""

import json
import math
from pathlib import Path

import pytest

from attnkit.cli import main

HERE = Path(__file__).parent / "fixtures" / "checkpoints"
EXPECTED = json.loads((HERE / "expected.json").read_text(encoding="utf-8"))
pytestmark = pytest.mark.usefixtures("one_thread")


def _run(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _jsonl(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _close(got, want, where: str = "") -> None:
    """Equal JSON values, numbers to 1e-5 (another thread count may round differently)."""
    if isinstance(want, float) or isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-5), where
    elif isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            _close(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


def _inputs(rows: list[dict]) -> list[str]:
    return [row["input"] for row in rows]


@pytest.mark.parametrize(
    "name", ["times-seq2seq", "times-transformer", "dates-seq2seq", "classify-attention"]
)
def test_text_checkpoints_predict_as_before(name, capsys):
    want = EXPECTED[name]["predict"]
    got = _jsonl(
        _run(capsys, "predict", "--checkpoint", str(HERE / name), "--json", *_inputs(want))
    )
    _close(got, want, name)


@pytest.mark.parametrize("name", ["lm-decoder-only", "lm-lstm-lm"])
def test_language_models_generate_and_score_as_before(name, capsys):
    want = EXPECTED[name]
    ckpt = str(HERE / name)
    text = _run(
        capsys, "generate", "--checkpoint", ckpt, "In the", "--length", "20", "--temperature", "0"
    )
    assert text == want["generate"]
    scores = json.loads(
        _run(
            capsys,
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            str(HERE / "_data" / "text.txt"),
            "--json",
        )
    )
    _close(scores, want["eval"], name)


@pytest.mark.parametrize("name", ["translate-rnn", "translate-transformer"])
def test_translation_models_translate_as_before(name, capsys):
    want = EXPECTED[name]["translate"]
    got = _jsonl(
        _run(capsys, "translate", "--checkpoint", str(HERE / name), "--json", *_inputs(want))
    )
    _close(got, want, name)


def test_a_price_model_predicts_as_before(capsys):
    want = EXPECTED["prices-attention"]
    got = _jsonl(
        _run(
            capsys,
            "predict",
            "--checkpoint",
            str(HERE / "prices-attention"),
            "--data",
            str(HERE / want["data"]),
            "--json",
            "--last",
            "5",
        )
    )
    _close(got, want["predict"], "prices")


@pytest.mark.parametrize("name", ["vision-cbam", "caption-row"])
def test_image_models_score_as_before(name, capsys):
    got = json.loads(_run(capsys, "eval", "--checkpoint", str(HERE / name), "--json"))
    _close(got, EXPECTED[name]["eval"], name)
