"""``attnkit train lm`` / ``generate`` / ``eval`` end to end on a small text, for both models;
a checkpoint generates the same text in a new process."""

import json
import subprocess
import sys

import pytest

from attnkit.cli import main

TEXT = "".join(
    f"And God said, let there be light {i % 7}; and there was light.\n" for i in range(300)
)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _train(text_file, out, *extra):
    argv = [
        "train",
        "lm",
        "--data",
        str(text_file),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--context",
        "32",
        "--threads",
        "1",
        *extra,
    ]
    assert main(argv) == 0


@pytest.mark.parametrize(
    "model_args",
    [
        ["--model", "decoder-only", "--d-model", "32", "--layers", "2", "--heads", "2"],
        ["--model", "lstm-lm", "--hidden", "48", "--layers", "1"],
    ],
    ids=["decoder-only", "lstm-lm"],
)
def test_train_generate_and_eval(text_file, tmp_path, capsys, model_args):
    out = tmp_path / "run"
    _train(text_file, out, *model_args, "--lr", "0.01")
    said = capsys.readouterr().out
    assert "bits per character" in said and "test" in said
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["name"] == "lm" and config["data"]["file"] == str(text_file)
    valid = config["metrics"]["bits_per_char"]
    assert 0 < valid < 4  # a uniform guess over the vocabulary is log2(V) > 4.5

    assert main(["eval", "--checkpoint", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] > 0 and 0 < result["bits_per_char"] < 4

    argv = ["generate", "--checkpoint", str(out), "And God", "--length", "80", "--seed", "3"]
    assert main(argv) == 0
    here = capsys.readouterr().out
    assert here.startswith("And God") and len(here.rstrip("\n")) >= len("And God") + 60
    # the context is 32: 80 characters need the sliding continuation
    other = subprocess.run(
        [sys.executable, "-m", "attnkit", *argv], capture_output=True, text=True, check=True
    )
    assert other.stdout == here


def test_lm_refuses_what_does_not_apply(text_file, tmp_path, capsys):
    argv = ["train", "lm", "--data", str(text_file), "--out", str(tmp_path / "x")]
    assert main([*argv, "--attention", "dot"]) == 2
    assert "--attention does not apply to train lm" in capsys.readouterr().err
    assert main([*argv, "--model", "transformer"]) == 2
    assert "invalid choice: 'transformer'" in capsys.readouterr().err
    assert main([*argv, "--model", "lstm-lm", "--d-model", "8"]) == 2
    assert "--d-model does not apply to lstm-lm" in capsys.readouterr().err
    assert main([*argv, "--model", "lstm-lm", "--positions", "learned"]) == 2
    assert "--positions does not apply to lstm-lm" in capsys.readouterr().err


def test_generate_refuses_unknown_characters_and_lm_checkpoints_elsewhere(
    text_file, tmp_path, capsys
):
    out = tmp_path / "run"
    _train(text_file, out, "--d-model", "16", "--layers", "1", "--heads", "2", "--epochs", "1")
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "Zebra§"]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(out), "x"]) == 2
    assert "use attnkit eval, attnkit export, attnkit generate" in capsys.readouterr().err
    assert main(["generate", "--checkpoint", str(out), "And", "--temperature", "-1"]) == 2
    assert "--temperature: must be a number >= 0" in capsys.readouterr().err


def test_an_interrupted_lm_run_resumes_with_its_own_settings(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    _train(text_file, out, "--d-model", "16", "--layers", "1", "--heads", "2", "--epochs", "1")
    assert (
        main(["train", "lm", "--out", str(out), "--resume", "--epochs", "2", "--threads", "1"]) == 0
    )
    said = capsys.readouterr().out
    assert "resuming after epoch 1" in said
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["d_model"] == 16 and config["task"]["context"] == 32
    assert config["data"]["file"] == str(text_file)  # the run's own text, not the default
