"""Smoke tests of every command on tiny configurations."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from attnkit import recipes
from attnkit.cli import build_parser, main
from attnkit.recipes import seq2seq as recipe
from attnkit.tasks import write_tsv

TINY = ["--hidden", "32", "--batch-size", "32", "--threads", "1"]


def run_cli(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "attnkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    assert main(["train", "times", "--n", "600", "--epochs", "2", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_a_checkpoint(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "trainer.pt"} <= names


def test_predict_in_a_new_process_matches(checkpoint, capsys):
    texts = ["quarter to six pm", "13.09", "noon"]
    # the same thread count in both: a matrix product split over other threads may round
    # differently in the last digit
    args = ["predict", "--checkpoint", str(checkpoint), "--json", "--threads", "1", *texts]
    assert main(args) == 0
    here = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    there = [json.loads(line) for line in proc.stdout.splitlines()]
    assert here == there
    for row, text in zip(here, texts, strict=True):
        assert row["input"] == text and isinstance(row["output"], str)
        assert len(row["weights"]) == len(row["output"]) + 1  # one row per token and the end
        assert all(len(r) == len(text) for r in row["weights"])


def test_eval_json_and_unreadable_rows(checkpoint, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["exact_match"] <= 1 and 0 <= result["char_accuracy"] <= 1
    assert result["n"] > 0
    data = tmp_path / "d.tsv"
    write_tsv(data, [("noon", "12:00"), ("zwölf uhr", "12:00")])
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["unreadable"] == 1 and "counted as wrong" in captured.err


def test_show_and_plot(checkpoint, tmp_path, capsys):
    png = tmp_path / "a.png"
    assert main(["show", "--checkpoint", str(checkpoint), "13.09", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000 and "13.09" in capsys.readouterr().out
    plots = tmp_path / "plots"
    assert main(["predict", "--checkpoint", str(checkpoint), "noon", "--plot", str(plots)]) == 0
    assert len(list(plots.glob("*.png"))) == 1


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "args,message",
    [
        (["predict", "--checkpoint", "{ckpt}", "zwölf"], "never saw"),
        (["predict", "--checkpoint", "{ckpt}", ""], "empty input"),
        (["predict", "--checkpoint", "{ckpt}", "1" * 500], "longer than"),
        (["show", "--checkpoint", "{ckpt}", "€"], "never saw"),
        (["predict", "--checkpoint", "/nonexistent/dir", "noon"], "no checkpoint directory"),
        (["train", "--out", "/tmp/x"], "give a task"),
        (["train", "times", "--data", "x.tsv", "--out", "/tmp/x"], "--data does not apply"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "/nonexistent.tsv"], "no such data file"),
        (["train", "times", "--hidden", "33", "--out", "/tmp/x"], "hidden_dim must be even"),
        (["train", "times", "--epochs", "0", "--out", "/tmp/x"], "--epochs: must be an int >= 1"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(checkpoint, args, message):
    proc = run_cli(*[a.replace("{ckpt}", str(checkpoint)) for a in args])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("task,epochs,hidden", [("times", 8, 128), ("dates", 20, 96)])
def test_train_defaults_depend_on_the_task(task, epochs, hidden):
    """The recipe's defaults are the dataclasses', with the task's preset on top, and are what
    training resolves."""
    defaults = recipes.get(task).defaults()
    assert (defaults["epochs"], defaults["hidden_dim"]) == (epochs, hidden)
    model, train = recipe.resolve(task, {})
    assert (train.epochs, model.get("hidden_dim", 96)) == (epochs, hidden)
    assert recipe.Seq2SeqConfig(10, 10).hidden_dim == 96


def test_explicit_flags_become_the_recipes_settings():
    from attnkit.cli.train import settings_of

    args = build_parser().parse_args(
        ["train", "times", "--epochs", "3", "--hidden", "64", "--out", "x"]
    )
    settings = settings_of(recipes.get("times"), args)
    assert settings.given() == {"epochs": 3, "hidden_dim": 64}


def test_resume_takes_the_runs_settings_and_refuses_others(tmp_path, capsys):
    out = tmp_path / "run"
    first = [
        "train",
        "times",
        "--n",
        "300",
        "--epochs",
        "2",
        "--attention",
        "dot",
        "--hidden",
        "32",
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--target",
        "0.0",
    ]
    assert main([*first, "--out", str(out)]) == 0  # stops after epoch 1 (target reached)
    assert main(["train", "--out", str(out), "--resume", "--threads", "1"]) == 0  # all its own
    assert "resuming after epoch 1" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["hidden_dim"] == 32 and config["config"]["attention"] == "dot"
    assert config["train_config"]["batch_size"] == 64 and config["train_config"]["epochs"] == 2
    for extra, message in [
        (["--hidden", "64"], "holds a run with hidden_dim=32"),
        (["--batch-size", "32"], "holds a run with batch_size=64"),
        (["--n", "400"], "holds a run on n 300"),
        (["--attention", "general", "--lr", "0.1"], "attention='dot', lr=0.01"),
    ]:
        proc = run_cli("train", "times", "--out", str(out), "--resume", *extra)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_train_on_a_users_tsv(tmp_path, capsys):
    data = tmp_path / "upper.tsv"
    words = ["cat", "dog", "bird", "fish", "lion", "bear", "wolf", "deer", "frog", "duck"]
    write_tsv(data, [(w, w.upper()) for w in words * 3])
    out = tmp_path / "ckpt"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out), *TINY]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["file"] == str(data) and config["task"]["name"] == "pairs"
    assert main(["predict", "--checkpoint", str(out), "cat"]) == 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches(tmp_path):
    args = ["train", "times", "--n", "3000", "--epochs", "3", *TINY]
    full = run_cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnkit.cli", *args, "--out", str(cut)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (cut / "trainer.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_cli(*args, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    a = json.loads((tmp_path / "full" / "config.json").read_text())["metrics"]
    b = json.loads((cut / "config.json").read_text())["metrics"]
    assert a == b


def test_summary_lists_layers_shapes_parameters_and_config(checkpoint, capsys):
    assert main(["summary", "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    run = recipe.load(checkpoint)
    total = sum(p.numel() for p in run.model.parameters())
    assert f"parameters: {total:,}" in out
    for name, module in run.model.named_children():
        params = sum(p.numel() for p in module.parameters())
        assert any(name in line and f"{params:,}" in line for line in out.splitlines()), name
    assert '"hidden_dim": 32' in out and "attention" in out and "[1, " in out


def test_train_on_the_tutorials_json_format_with_options(tmp_path, capsys):
    data = tmp_path / "times.json"
    data.write_text(json.dumps([[t, g] for t, g in recipe.tasks.get("times").generate(300, 1)]))
    out = tmp_path / "ckpt"
    args = [
        "train",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--out",
        str(out),
        "--normalize",
        "nfkc,casefold",
        "--unknown-token",
        *TINY,
    ]
    assert main(args) == 0
    task = json.loads((out / "config.json").read_text())["task"]
    assert task["normalize"] == ["nfkc", "casefold"] and task["unknown_token"] is True
    assert main(["predict", "--checkpoint", str(out), "NOON €"]) == 0  # unknown: read, not refused
    proc = run_cli("train", "--data", str(data), "--out", str(out), "--normalize", "lower")
    assert proc.returncode == 2 and "unknown step(s) 'lower'" in proc.stderr


@pytest.mark.property
def test_data_defaults_follow_the_data_and_explicit_settings_win(tmp_path):
    small = [(f"{i} x", str(i)) for i in range(300)]
    big = [(f"{i} x", str(i)) for i in range(30_000)]
    s, b = recipe.data_defaults(small), recipe.data_defaults(big)
    assert s["epochs"] > b["epochs"] and s["hidden_dim"] < b["hidden_dim"]
    assert s["batch_size"] < b["batch_size"]
    # about the same number of examples seen, whatever the size (within the clamps)
    mid = recipe.data_defaults(big[:12_000])
    assert 100_000 <= mid["epochs"] * 9_600 <= 140_000
    data = tmp_path / "p.tsv"
    write_tsv(data, small)
    lines = []
    run = recipe.train(
        data=data, out=tmp_path / "c", epochs=1, batch_size=64, progress=False, log=lines.append
    )
    tc = run.config["train_config"]
    assert tc["epochs"] == 1 and tc["batch_size"] == 64  # given: kept
    assert run.model.cfg.hidden_dim == s["hidden_dim"]  # not given: from the data
    assert any(line.startswith("from the data: hidden_dim=64") for line in lines)


def test_resume_naming_the_task_again_keeps_the_runs_n(tmp_path, capsys):
    out = str(tmp_path / "ckpt")
    args = ["train", "times", "--epochs", "2", "--out", out, *TINY]
    assert main([*args, "--n", "300", "--target", "0"]) == 0  # stops after one epoch
    assert main([*args, "--resume", "--target", "1"]) == 0  # no --n: the run's 300
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["data"]["n"] == 300


def test_train_predict_and_summarise_a_transformer(tmp_path, capsys):
    out = tmp_path / "tr"
    args = [
        "train",
        "times",
        "--model",
        "transformer",
        "--n",
        "300",
        "--epochs",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--layers",
        "1",
        "--out",
        str(out),
        "--threads",
        "1",
        "--positions",
        "rotary",
    ]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "transformer" and config["config"]["d_model"] == 16
    assert config["config"]["positions"] == "rotary"
    assert config["config"]["encoder_layers"] == config["config"]["decoder_layers"] == 1
    assert main(["predict", "--checkpoint", str(out), "--json", "7:45 pm"]) == 0
    assert main(["summary", "--checkpoint", str(out)]) == 0
    assert "TransformerDecoderLayer" in capsys.readouterr().out
    for kind, rows in (("cross", None), ("encoder", "7:45 pm"), ("decoder", None)):
        png = tmp_path / f"{kind}.png"
        argv = [
            "show",
            "--checkpoint",
            str(out),
            "7:45 pm",
            "--kind",
            kind,
            "--head",
            "1",
            "--out",
            str(png),
        ]
        assert main(argv) == 0
        said = capsys.readouterr().out
        assert f"layer 0 {kind} attention, head 1" in said and "all 2 heads" in said
        assert png.stat().st_size > 0
        if rows:  # the encoder's rows are the input's characters
            assert all(f"{c} |" in said for c in rows.replace(" ", ""))
    assert main(["show", "--checkpoint", str(out), "7:45", "--head", "2"]) == 2
    assert "the model has 2 heads" in capsys.readouterr().err
    assert main(["show", "--checkpoint", str(out), "7:45", "--layer", "3"]) == 2
    assert "has 1 layers" in capsys.readouterr().err
    proc = run_cli(
        "train", "times", "--model", "transformer", "--hidden", "64", "--out", str(tmp_path / "x")
    )
    assert proc.returncode == 2 and "--hidden does not apply to transformer" in proc.stderr
    proc = run_cli("train", "--out", str(out), "--resume", "--model", "seq2seq")
    assert proc.returncode == 2 and "holds a transformer run, not seq2seq" in proc.stderr
