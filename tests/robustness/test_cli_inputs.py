"""Bad arguments to every command: exit code 2 and one line on stderr, never a traceback, a
hang or a silent result. Commands run in-process (``main``) for speed."""

import json
import re

import pytest
import torch

from attnkit.cli import main
from attnkit.tasks import write_tsv


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "ckpt"
    # a tiny model that decodes to its length limit: the case that used to break `show`
    args = ["train", "times", "--n", "300", "--hidden", "8", "--epochs", "1", "--threads", "1"]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.fixture
def files(tmp_path, ckpt):
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    a_dir = tmp_path / "adir"
    a_dir.mkdir()
    no_trainer = tmp_path / "no_trainer"
    no_trainer.mkdir()
    for name in ("model.safetensors", "config.json"):
        (no_trainer / name).write_bytes((ckpt / name).read_bytes())
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes(b"caf\xe9\tCAFE\n")
    bad_trainer = tmp_path / "bad_trainer"
    bad_trainer.mkdir()
    for name in ("model.safetensors", "config.json"):
        (bad_trainer / name).write_bytes((ckpt / name).read_bytes())
    torch.save({"epoch": 1}, bad_trainer / "trainer.pt")
    return {
        "{ckpt}": str(ckpt),
        "{file}": str(a_file),
        "{dir}": str(a_dir),
        "{no_trainer}": str(no_trainer),
        "{tmp}": str(tmp_path),
        "{latin1}": str(latin1),
        "{bad_trainer}": str(bad_trainer),
    }


CASES = [
    # train
    (["train", "--out", "{tmp}/o"], "give a task"),
    (["train", "times", "--data", "{file}", "--out", "{tmp}/o"], "--data does not apply"),
    (["train", "times", "--out", ""], "--out: must name a file or directory"),
    (["train", "--data", "", "--out", "{tmp}/o"], "--data: must name a file"),
    (["train", "times", "--out", "{file}"], "is a file, not a checkpoint directory"),
    (["train", "times", "--out", "/proc/attnkit/o"], "cannot write to /proc/attnkit/o"),
    (["train", "times", "--out", "{ckpt}"], "already holds a checkpoint"),
    (["train", "times", "--out", "{no_trainer}", "--resume"], "trainer.pt .* is missing"),
    (["train", "times", "--out", "{ckpt}", "--resume", "--overwrite"], "not both"),
    (["train", "times", "--out", "{ckpt}", "--resume", "--n", "400"], "holds a run on n 300"),
    (
        ["train", "times", "--out", "{ckpt}", "--resume", "--batch-size", "7"],
        "holds a run with batch_size=128",
    ),
    (["train", "times", "--out", "{tmp}/o", "--batch-size", "0"], "--batch-size: must be an int"),
    (["train", "times", "--out", "{tmp}/o", "--threads", "-1"], "--threads: must be an int >= 1"),
    (["train", "times", "--out", "{tmp}/o", "--threads", "0"], "--threads: must be an int >= 1"),
    (["train", "times", "--out", "{tmp}/o", "--patience", "0"], "--patience: must be an int"),
    (["train", "times", "--out", "{tmp}/o", "--target", "-1"], "--target: must be a number in"),
    (["train", "times", "--out", "{tmp}/o", "--target", "nan"], "--target: must be a number in"),
    (["train", "times", "--out", "{tmp}/o", "--lr", "0"], "--lr: must be a finite number > 0"),
    (["train", "times", "--out", "{tmp}/o", "--lr", "inf"], "--lr: must be a finite number > 0"),
    (["train", "times", "--out", "{tmp}/o", "--n", "5"], "n must be an int from 10"),
    (["train", "times", "--out", "{tmp}/o", "--n", "10000000000"], "n must be an int from 10"),
    (["train", "times", "--out", "{tmp}/o", "--hidden", "33"], "hidden_dim must be even"),
    (["train", "times", "--out", "{tmp}/o", "--hidden", "1000000"], "hidden_dim must be <="),
    (["eval", "--checkpoint", "{ckpt}", "--data", "{latin1}"], "latin1.tsv is not UTF-8"),
    (["train", "times", "--out", "{bad_trainer}", "--resume"], "trainer.pt is incomplete"),
    (["train", "times", "--out", "{tmp}/o", "--seed", "-3"], "--seed: must be an int >= 0"),
    (["train", "times", "--out", "{tmp}/o", "--epochs", "x"], "--epochs: must be an int"),
    (["train", "--data", "{tmp}/missing.tsv", "--out", "{tmp}/o"], "no such data file"),
    (["train", "--data", "{dir}", "--out", "{tmp}/o"], "no such data file"),
    (["train", "--data", "{file}", "--out", "{tmp}/o"], "a.txt:1: expected two columns"),
    # eval
    (["eval", "--checkpoint", "{tmp}/none"], "no checkpoint directory"),
    (["eval", "--checkpoint", "{dir}"], "is not a checkpoint"),
    (["eval", "--checkpoint", "{ckpt}", "--data", ""], "--data: must name a file"),
    (["eval", "--checkpoint", "{ckpt}", "--data", "{tmp}/missing.tsv"], "no such data file"),
    (["eval", "--checkpoint", "{ckpt}", "--threads", "0"], "--threads: must be an int >= 1"),
    # predict
    (["predict", "--checkpoint", "{ckpt}", ""], "empty input"),
    (["predict", "--checkpoint", "{ckpt}", "   "], "only whitespace"),
    (["predict", "--checkpoint", "{ckpt}", "zwölf"], "never saw"),
    (["predict", "--checkpoint", "{ckpt}", "1" * 500], "longer than"),
    (["predict", "--checkpoint", "{ckpt}", "--beam", "0", "noon"], "--beam: must be an int"),
    (["predict", "--checkpoint", "{ckpt}", "--beam", "-2", "noon"], "--beam: must be an int"),
    (["predict", "--checkpoint", "{ckpt}", "--threads", "-1", "noon"], "--threads: must be"),
    (["predict", "--checkpoint", "{ckpt}", "--beam", "1000000", "noon"], "from 1 to 256"),
    (["predict", "--checkpoint", "{ckpt}", "--plot", "{file}", "noon"], "is a file; name a dir"),
    (["predict", "--checkpoint", "{ckpt}", "--plot", "", "noon"], "--plot: must name"),
    (["predict", "--checkpoint", "", "noon"], "--checkpoint: must name"),
    (["predict", "--checkpoint", "{ckpt}"], r"give the text\(s\) to predict"),
    # show
    (["show", "--checkpoint", "{ckpt}", "--out", "{dir}", "noon"], "is a directory"),
    (["show", "--checkpoint", "{ckpt}", "--out", "{tmp}/a.xyz", "noon"], "xyz"),
    (["show", "--checkpoint", "{ckpt}", "€"], "never saw"),
    # demo, tour, bench, the command itself
    (["demo", "--epochs", "0"], "--epochs: must be an int"),
    (["demo", "--out", ""], "--out: must name"),
    (["tour", "--seed", "-1"], "--seed: must be an int >= 0"),
    (["bench"], "required"),
    (["nonsense"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_arguments_exit_2_with_one_line(argv, message, files, capsys):
    argv = [_fill(a, files) for a in argv]
    code, _, err = run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]


def _fill(arg: str, files: dict) -> str:
    for key, value in files.items():
        arg = arg.replace(key, value)
    return arg


def test_show_and_plot_at_the_length_limit(ckpt, tmp_path, capsys):
    """Decoding that never ends has one weight row per character and no end row."""
    code, out, err = run(
        ["show", "--checkpoint", str(ckpt), "noon", "--out", str(tmp_path / "map")], capsys
    )
    assert code == 0, err
    assert (tmp_path / "map.png").is_file() and f"written to {tmp_path / 'map.png'}" in out
    code, out, err = run(
        [
            "predict",
            "--checkpoint",
            str(ckpt),
            "--json",
            "--plot",
            str(tmp_path / "plots"),
            "noon",
            "13.09",
        ],
        capsys,
    )
    assert code == 0, err
    for line in out.splitlines():
        row = json.loads(line)
        assert len(row["weights"]) in (len(row["output"]), len(row["output"]) + 1)
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2


def test_a_wide_beam_beyond_the_vocabulary_works(ckpt, capsys):
    code, out, err = run(["predict", "--checkpoint", str(ckpt), "--beam", "50", "noon"], capsys)
    assert code == 0, err and out.startswith("noon\t")


def test_a_byte_order_mark_is_not_data(tmp_path, capsys):
    data = tmp_path / "bom.tsv"
    words = ["cat", "dog", "bird", "fish", "lion", "bear", "wolf", "deer", "frog", "duck"]
    write_tsv(data, [(w, w.upper()) for w in words * 2])
    data.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    out = tmp_path / "ckpt"
    code, _, err = run(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--threads",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert "\ufeff" not in config["task"]["src_vocab"] and "c" in config["task"]["src_vocab"]
    code, out_text, err = run(
        ["eval", "--checkpoint", str(out), "--data", str(data), "--json"], capsys
    )
    assert code == 0 and json.loads(out_text)["unreadable"] == 0


def test_overwrite_replaces_and_resume_into_nothing_is_refused(ckpt, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("model.safetensors", "config.json", "trainer.pt"):
        (copy / name).write_bytes((ckpt / name).read_bytes())
    args = ["train", "times", "--n", "300", "--hidden", "8", "--epochs", "1", "--threads", "1"]
    code, _, err = run([*args, "--out", str(copy), "--overwrite", "--seed", "1"], capsys)
    assert code == 0, err
    assert json.loads((copy / "config.json").read_text())["train_config"]["seed"] == 1
    (tmp_path / "killed").mkdir()  # what a run killed before its first epoch ended leaves
    for where in (tmp_path / "fresh", tmp_path / "killed"):
        code, out, err = run([*args, "--out", str(where), "--resume"], capsys)
        assert code == 2 and "nothing to resume in" in err and "without --resume" in err, err
        assert not (where / "config.json").exists()
