"""``attnkit train prices`` / ``eval`` / ``predict`` / ``report prices`` end to end on a small
CSV of bars; a checkpoint predicts identically in a new process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from attnkit.cli import main
from reference import random_walk_bars

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("bars") / "bars.csv"
    random_walk_bars(700, seed=4).to_csv(path, index_label="Date")
    return path


@pytest.fixture(scope="module")
def checkpoint(csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "ckpt"
    argv = [
        "train",
        "prices",
        "--data",
        str(csv),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--threads",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
    ]
    assert main(argv) == 0
    return out


def _predict(checkpoint, *extra):
    return ["predict", "--checkpoint", str(checkpoint), "--json", "--last", "1000", *extra]


def test_train_saves_the_scaler_and_scores_the_test_split_against_baselines(checkpoint, capsys):
    config = json.loads((checkpoint / "config.json").read_text())
    task = config["task"]
    assert task["name"] == "prices" and task["kind"] == "fractal" and task["window"] == 20
    assert config["model"] == "series-attention" and config["config"]["num_heads"] == 2
    assert len(task["mean"]) == len(task["scale"]) == len(task["features"])
    (tr0, tr1), (va0, va1), (te0, te1) = task["splits"]
    assert va0 - tr1 >= 22 and te0 - va1 >= 22  # purge gaps: window + fractal horizon
    assert main(["eval", "--checkpoint", str(checkpoint), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"attention", "always-none", "majority", "half-fractal"}
    assert scores["always-none"]["trades"] == 0 and scores["always-none"]["pnl"] == 0


def test_a_reloaded_checkpoint_predicts_identically_in_a_new_process(checkpoint, csv, capsys):
    assert main(_predict(checkpoint, "--data", str(csv))) == 0
    here = capsys.readouterr().out
    rows = [json.loads(line) for line in here.splitlines()]
    assert len(rows) > 600 and all(
        abs(r["p_none"] + r["p_buy"] + r["p_sell"] - 1) < 1e-9 for r in rows
    )
    other = subprocess.run(
        [sys.executable, "-m", "attnkit", *_predict(checkpoint)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout == here  # the default data: the CSV it was trained on


def test_predictions_at_t_ignore_every_bar_after_t(checkpoint, csv, tmp_path, capsys):
    import pandas as pd

    bars = pd.read_csv(csv, index_col=0, parse_dates=True)
    cut = 500
    changed = bars.copy()
    changed.iloc[cut + 1 :, :4] *= 1.3  # every later bar moves, the first cut + 1 do not
    changed.iloc[cut + 1 :, 4] = 7.0
    for name, frame in (("full", bars), ("changed", changed), ("short", bars.iloc[: cut + 1])):
        frame.to_csv(tmp_path / f"{name}.csv", index_label="Date")
    seen = {}
    for name in ("full", "changed", "short"):
        assert main(_predict(checkpoint, "--data", str(tmp_path / f"{name}.csv"))) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        seen[name] = {r["time"]: r for r in rows}
    upto = sorted(seen["short"])
    assert len(upto) > 400
    for t in upto:
        assert seen["full"][t] == seen["changed"][t] == seen["short"][t]
    later = [t for t in seen["full"] if t not in seen["short"]]
    assert any(seen["full"][t] != seen["changed"][t] for t in later)


def test_prices_refuse_what_does_not_apply(checkpoint, csv, tmp_path, capsys):
    out = str(tmp_path / "x")
    assert main(["train", "prices", "--data", str(csv), "--out", out, "--attention", "dot"]) == 2
    assert "--attention does not apply to train prices" in capsys.readouterr().err
    assert main(["train", "prices", "--data", str(csv), "--out", out, "--model", "seq2seq"]) == 2
    assert "invalid choice: 'seq2seq'" in capsys.readouterr().err
    assert main(["train", "times", "--out", out, "--label", "return"]) == 2
    assert "--label does not apply to train times" in capsys.readouterr().err
    assert main(["train", "prices", "--data", str(tmp_path / "none.csv"), "--out", out]) == 2
    assert "no file" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(checkpoint), "1994-09-14"]) == 2
    assert "text does not apply to predict on a price model" in capsys.readouterr().err
    assert main(["show", "--checkpoint", str(checkpoint), "x"]) == 2
    assert "holds a price model" in capsys.readouterr().err
    short = tmp_path / "short.csv"
    random_walk_bars(60, seed=1).to_csv(short, index_label="Date")
    assert main(["train", "prices", "--data", str(short), "--out", out]) == 2
    assert "too few" in capsys.readouterr().err


def test_a_checkpoint_whose_task_does_not_fit_its_model_is_refused(checkpoint, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    config = json.loads((bad / "config.json").read_text())
    config["task"]["mean"] = config["task"]["mean"][:-1]
    (bad / "config.json").write_text(json.dumps(config))
    assert main(_predict(bad)) == 2
    assert "config.json" in capsys.readouterr().err


def test_report_prices_writes_the_report_and_says_what_it_found(csv, tmp_path, capsys):
    out = tmp_path / "report"
    argv = [
        "report",
        "prices",
        "--data",
        str(csv),
        "--out",
        str(out),
        "--labels",
        "direction",
        "--models",
        "mlp,dlinear",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--train-size",
        "200",
        "--test-size",
        "100",
        "--threads",
        "1",
    ]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"# Self-attention against naive baselines: {csv}")
    assert "No attention model was part of this comparison" in said
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| mlp |" in text and "| majority (baseline) |" in text
    assert (out / "equity_direction.png").is_file()
    assert main([*argv[:-2], "--models", "transformer"]) == 2
    assert "unknown transformer" in capsys.readouterr().err
    assert main([*argv[:-2], "--cost", "-1"]) == 2
    assert "--cost: must be a fraction" in capsys.readouterr().err


def test_training_resumes_where_it_stopped(csv, tmp_path, capsys):
    out = tmp_path / "resume"
    base = [
        "train",
        "prices",
        "--data",
        str(csv),
        "--out",
        str(out),
        "--model",
        "dlinear",
        "--label",
        "return",
        "--threads",
        "1",
    ]
    assert main([*base, "--epochs", "2"]) == 0
    assert main([*base, "--epochs", "3", "--resume"]) == 0
    said = capsys.readouterr().out
    assert "resuming after epoch 2" in said and "epoch   3" in said
    assert main(_predict(out)) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(np.isfinite(r["return"]) and r["position"] in (-1, 0, 1) for r in rows)
