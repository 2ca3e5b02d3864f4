"""Exported encoder-decoders from the command line: ``attnkit predict --runtime onnx`` writes
what ``attnkit predict`` writes for the fixture checkpoints, and what cannot be exported or run
says why in one line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.cli import main  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints"


def _predictions(argv, capsys):
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("name", ["dates-seq2seq", "times-seq2seq", "times-transformer"])
def test_predict_with_the_onnx_runtime_equals_predict(name, tmp_path, capsys):
    ckpt, out = FIXTURES / name, tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--threads", "1"]) == 0
    assert "wrote" in capsys.readouterr().out
    config = json.loads((ckpt / "config.json").read_text())
    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == config["task"] and meta["recipe"] == config["task"]["name"]
    texts = (
        ["3 May 1999", "tuesday, march 1 2011", "12/31/99", "1 1 1"]
        if name.startswith("dates")
        else ["quarter past five", "7:45 pm", "noon", "twenty to nine"]
    )
    ok = [t for t in texts if not _unreadable(config, t)]
    assert ok
    for beam in ("1", "3"):
        want = _predictions(
            ["predict", "--checkpoint", str(ckpt), "--json", "--beam", beam, *ok], capsys
        )
        got = _predictions(
            ["predict", "--runtime", "onnx", "--model", str(out), "--json", "--beam", beam, *ok],
            capsys,
        )
        assert [g["output"] for g in got] == [w["output"] for w in want]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g["weights"], w["weights"], atol=1e-5)


def _unreadable(config, text):
    from attnkit import tasks

    return tasks.from_config(config["task"]).input_problem(text)


def test_what_cannot_be_exported_or_run_says_why_in_one_line(tmp_path, capsys):
    # --target mt5 is for price models
    code = main(
        [
            "export",
            "--checkpoint",
            str(FIXTURES / "dates-seq2seq"),
            "--out",
            str(tmp_path / "x"),
            "--target",
            "mt5",
        ]
    )
    assert code == 2 and "--target" in capsys.readouterr().err
    # a checkpoint is not an export; an export is not a checkpoint
    code = main(["predict", "--runtime", "onnx", "--model", str(FIXTURES / "dates-seq2seq"), "x"])
    assert code == 2 and "model.json" in capsys.readouterr().err
    code = main(["predict", "--model", str(tmp_path), "x"])
    assert code == 2 and "--runtime onnx" in capsys.readouterr().err
    # a damaged graph
    out = tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(FIXTURES / "dates-seq2seq"), "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "step.onnx").write_bytes(b"\x08\x01garbage")
    code = main(["predict", "--runtime", "onnx", "--model", str(out), "3 May 1999"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "step.onnx" in err and len(err.splitlines()) == 1
    shutil.rmtree(out)


def test_the_captioner_exports_for_its_image_size_and_decodes_alike(tmp_path, capsys):
    from attnkit.export.sequences import OnnxDecoder
    from attnkit.models import decoding
    from attnkit.recipes import caption

    ckpt, out = FIXTURES / "caption-row", tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    run = caption.load(ckpt)
    images = caption.test_data(run, 40).captions.x  # new images, a batch size not exported
    graphs = OnnxDecoder(out, threads=1)
    want, got = (
        decoding.greedy(run.model.eval(), images, None),
        decoding.greedy(graphs, images, None),
    )
    assert got.ids == want.ids
    assert float((got.weights - want.weights).abs().max()) < 1e-5  # (B, steps, rows, columns)
    assert decoding.beam_search(graphs, images[:8], None, 3).ids == (
        decoding.beam_search(run.model, images[:8], None, 3).ids
    )


# the Transformer's graphs and their decoding: test_predict_with_the_onnx_runtime_equals_predict
# [times-transformer] and test_sequence_export.py; the subword vocabularies are the same here
@pytest.mark.parametrize("name", ["translate-rnn"])
def test_translate_with_the_onnx_runtime_equals_translate(name, tmp_path, capsys):
    ckpt, out = FIXTURES / name, tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    texts = ["In the beginning God created the heavens and the earth.", "And God said"]
    for beam in ("1", "3"):
        args = ["--json", "--beam", beam, *texts]
        want = _predictions(["translate", "--checkpoint", str(ckpt), *args], capsys)
        got = _predictions(["translate", "--runtime", "onnx", "--model", str(out), *args], capsys)
        assert [g["output"] for g in got] == [w["output"] for w in want]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g["weights"], w["weights"], atol=1e-5)
