"""The captioner end to end on a tiny run: it reads unseen digit strings, its attention for each
digit falls mostly on that digit, it reloads in a new process with the same scores, and the
commands draw and refuse what they should."""

import json
import subprocess
import sys

import pytest
import torch

from attnkit.cli import main
from attnkit.recipes import caption
from attnkit.tasks.captions import box_share

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("caption") / "run"
    before = torch.get_num_threads()
    assert (
        main(
            [
                "train",
                "caption",
                "--n",
                "4000",
                "--epochs",
                "5",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    torch.set_num_threads(before)
    return out


def test_a_trained_captioner_reads_unseen_strings_and_looks_at_each_digit(trained):
    run = caption.load(trained)
    scores = caption.evaluate(run, n=300)
    assert scores["n"] == 300 and scores["box_share_uniform"] == pytest.approx(0.2)
    assert scores["exact_match"] > 0.5
    assert scores["box_share"] > 0.5  # most of the mass on the digit being written
    test = caption.test_data(run, n=50)
    hits = total = 0
    for (text, _, weights), boxes in zip(
        caption.caption(run, test.captions.x), test.captions.boxes, strict=True
    ):
        for k, (top, bottom, left, right) in enumerate(boxes[: len(text)]):
            cell = int(weights[k].argmax()) % weights.shape[-1]  # its column in the 2 x 10 grid
            hits += left <= cell * 4 + 2 < right
            total += 1
            assert 0 <= box_share(weights[k], (top, bottom, left, right), (8, 40)) <= 1 + 1e-9
    assert (
        hits / total > 0.6
    )  # mostly, the most attended cell is over the digit being written (chance 0.2)


def test_a_reloaded_captioner_scores_the_same_in_a_new_process(trained):
    here = caption.evaluate(caption.load(trained), n=200)
    code = (
        f"import json; from attnkit.recipes import caption; run = caption.load("
        f"{str(trained)!r}); print(json.dumps(caption.evaluate(run, n=200)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == here


def test_show_draws_a_panel_per_token_and_eval_prints_the_scores(trained, tmp_path, capsys):
    png = tmp_path / "steps.png"
    assert main(["show", "--checkpoint", str(trained), "7", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    run = caption.load(trained)
    ((text, tokens, weights),) = caption.caption(run, caption.test_data(run).captions.x[7])
    assert tokens[: len(text)] == list(text) and len(tokens) == len(weights)
    assert f"wrote {text!r}" in out and f"{len(weights)} panels" in out and png.stat().st_size
    assert (
        main(
            [
                "show",
                "--checkpoint",
                str(trained),
                "7",
                "--beam",
                "3",
                "--out",
                str(tmp_path / "beam.png"),
            ]
        )
        == 0
    )
    assert main(["eval", "--checkpoint", str(trained), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["n"] == 2000 and 0 <= scores["box_share"] <= 1


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "argv, message",
    [
        (["show", "--checkpoint", "{run}", "2000"], "0..1999"),
        (["show", "--checkpoint", "{run}", "seven"], "0..1999"),
        (["predict", "--checkpoint", "{run}", "1"], "holds a captioner"),
        (["train", "caption", "--out", "{tmp}/a", "--pooling", "attention"], "--pooling"),
        (["train", "caption", "--out", "{tmp}/b", "--data", "x.csv"], "--data does not apply"),
        (["train", "vision", "--out", "{tmp}/c", "--layout", "grid"], "--layout"),
        (["train", "times", "--out", "{tmp}/d", "--doubly-stochastic", "1"], "--doubly-stochastic"),
        (
            ["train", "caption", "--out", "{tmp}/e", "--doubly-stochastic", "-1"],
            "doubly-stochastic",
        ),
    ],
)
def test_commands_refuse_what_a_captioner_cannot_do(trained, tmp_path, capsys, argv, message):
    argv = [a.format(run=trained, tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse refuses a value before main runs the command
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err
