"""``attnkit train classify``, ``attnkit explain``, ``predict`` and ``eval`` of classifiers end
to end, on a small CSV file."""

import csv
import html
import json
import random
import re
import subprocess
import sys

import pytest

from attnkit.cli import main
from reference import one_cue_review


def _write(path, n=400, seed=0):
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            w.writerow([one_cue_review(rng, i % 2 == 1), "good" if i % 2 else "bad"])
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    data = _write(root / "reviews.csv")
    out = root / "model"
    args = [
        "train",
        "classify",
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "6",
        "--lr",
        "0.01",
        "--hidden",
        "16",
        "--vocab-size",
        "60",
        "--threads",
        "1",
        "--batch-size",
        "16",
    ]
    assert main(args) == 0
    return out, data


def test_train_prints_the_test_split_and_explain_writes_html_of_the_input_words(
    checkpoint, tmp_path, capsys
):
    out, _ = checkpoint
    text = "it was a witty story & the cast <b>quite</b> superb"
    page = tmp_path / "ex" / "explain.html"
    assert (
        main(["explain", "--checkpoint", str(out), text, "--html", str(page), "--color", "never"])
        == 0
    )
    shown = capsys.readouterr().out
    assert shown.startswith("prediction: good") and "superb[" in shown
    body = page.read_text(encoding="utf-8")
    assert "<script" not in body and "Content-Security-Policy" in body
    words = [html.unescape(w) for w in re.findall(r'<span class="w"[^>]*>([^<]*)</span>', body)]
    assert words and set(words) <= set(text.split())  # every highlighted word is an input word
    assert words[: len(text.split())] == text.split()  # the attention block, in order


def test_explain_json_and_colour(checkpoint, capsys):
    out, _ = checkpoint
    assert main(["explain", "--checkpoint", str(out), "a dull plot", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["label"] == "bad" and [w["word"] for w in data["sentences"][0]] == [
        "a",
        "dull",
        "plot",
    ]
    assert sum(w["weight"] for w in data["sentences"][0]) == pytest.approx(1.0, abs=1e-5)
    assert main(["explain", "--checkpoint", str(out), "a dull plot", "--color", "always"]) == 0
    assert "\x1b[48;2;" in capsys.readouterr().out


def test_predict_and_eval_and_a_reload_in_a_new_process(checkpoint, capsys):
    out, data = checkpoint
    assert main(["predict", "--checkpoint", str(out), "--json", "a moving film", "dull"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["output"] for r in rows] == ["good", "bad"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "attnkit.cli",
            "predict",
            "--checkpoint",
            str(out),
            "--json",
            "a moving film",
            "dull",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert [json.loads(line) for line in done.stdout.splitlines()] == rows
    assert main(["eval", "--checkpoint", str(out), "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert test["accuracy"] > 0.9 and 0 < test["n"] < 400
    assert main(["eval", "--checkpoint", str(out), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 400


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "classify", "--out", "X", "--model", "seq2seq"], "--model does not apply"),
        (
            ["train", "dates", "--out", "X", "--pooling", "mean"],
            "--pooling does not apply to train dates",
        ),
        (["train", "translate", "--out", "X", "--pooling", "mean"], "--pooling does not apply"),
        (["explain", "--checkpoint", "CKPT", ""], "the text is empty"),
        (["explain", "--checkpoint", "CKPT", "x", "--html", "TMP"], "is a directory"),
        (["predict", "--checkpoint", "CKPT", "x", "--beam", "2"], "does not apply to predict"),
        (["eval", "--checkpoint", "CKPT", "--beam", "2"], "--beam does not apply to eval"),
        (
            ["show", "--checkpoint", "CKPT", "x"],
            "show does not apply (use attnkit eval, attnkit predict, attnkit explain, "
            "attnkit export)",
        ),
    ],
)
def test_what_does_not_apply_is_refused_in_one_line(checkpoint, tmp_path, capsys, args, message):
    out, _ = checkpoint
    args = [
        str(out)
        if a == "CKPT"
        else str(tmp_path)
        if a == "TMP"
        else str(tmp_path / a)
        if a == "X"
        else a
        for a in args
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.bad_input
def test_explain_refuses_a_directory_without_a_classifier(tmp_path, capsys):
    assert main(["explain", "--checkpoint", str(tmp_path), "x"]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
