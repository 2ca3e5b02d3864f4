"""Bad input on the surfaces added since the first campaign (price files, classifier files,
language models, checkpoints of every kind, resume, distributed launch): each case exits 2 with
one line on stderr naming the problem, never a traceback or a silent result. The ids say which
defect of the campaign a case reproduces (``prices-zero``), or that it is a neighbour found
while fixing one."""

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnkit.cli import main
from reference import random_walk_bars, write_reviews

pytestmark = pytest.mark.bad_input


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("surfaces")
    write_reviews(root / "reviews.csv")
    (root / "text.txt").write_text("the quick brown fox jumps over the lazy dog.\n" * 120)
    bars = random_walk_bars(700, seed=4)
    bars.to_csv(root / "bars.csv", index_label="Date")
    one = ["--epochs", "1", "--threads", "1"]
    clf = ["train", "classify", "--data", str(root / "reviews.csv"), "--hidden", "8"]
    assert main([*clf, "--vocab-size", "40", "--out", str(root / "clf"), *one]) == 0
    lm = ["train", "lm", "--data", str(root / "text.txt"), "--d-model", "16", "--heads", "2"]
    assert main([*lm, "--layers", "1", "--context", "32", "--out", str(root / "lm"), *one]) == 0
    px = ["train", "prices", "--data", str(root / "bars.csv"), "--d-model", "16"]
    assert main([*px, "--out", str(root / "px"), *one]) == 0

    # files that are wrong in one way each
    b = bars.copy()
    b.iloc[350, b.columns.get_loc("low")] = 0.0
    b.to_csv(root / "zero.csv", index_label="Date")
    b = bars.copy()
    b.iloc[690, b.columns.get_loc("close")] = -1.0
    b.to_csv(root / "negative-late.csv", index_label="Date")
    b = bars.copy()
    b.iloc[10, b.columns.get_loc("open")] = b["high"].iloc[10] * 1.01
    b.to_csv(root / "open-above-high.csv", index_label="Date")
    day_first = bars.copy()
    day_first.index = day_first.index.strftime("%d/%m/%Y %H:%M")
    day_first.to_csv(root / "day-first.csv", index_label="Date")
    iso = (root / "bars.csv").read_text().splitlines()
    dmy = (root / "day-first.csv").read_text().splitlines()
    (root / "mixed.csv").write_text("\n".join(iso[:300] + dmy[300:]) + "\n")
    (root / "empty.csv").write_text("")
    (root / "header-only.csv").write_text("Date,Open,High,Low,Close\n")
    constant = bars.copy()
    constant[["open", "high", "low", "close"]] = 1.0
    constant.to_csv(root / "constant.csv", index_label="Date")
    (root / "big-field.csv").write_text(
        "text,label\n"
        + "".join(f"{'x' * 140_000 if i == 3 else 'a b'},{i % 2}\n" for i in range(40))
    )
    (root / "twice.csv").write_text("text,label\n" + "same text,a\nsame text,b\n" * 30)
    (root / "a-file").write_text("x")
    (root / "killed").mkdir()
    return root


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _broken(made, kind, tmp_path):
    """A copy of checkpoint ``kind`` broken one way (its name says which)."""
    name, how = kind.split(":")
    out = _copy(made / name, tmp_path / f"{name}-{how}")
    if how == "nan":
        weights = load_file(out / "model.safetensors")
        first = next(k for k, v in weights.items() if v.is_floating_point())
        weights[first] = torch.full_like(weights[first], float("nan"))
        meta = json.loads((made / name / "config.json").read_text())
        from attnkit.train.checkpoint import DIGEST, config_digest

        save_file(weights, out / "model.safetensors", metadata={DIGEST: config_digest(meta)})
    elif how == "stripped":  # the classes reversed, the digest removed: a label flip
        config = json.loads((out / "config.json").read_text())
        config["task"]["classes"] = config["task"]["classes"][::-1]
        (out / "config.json").write_text(json.dumps(config))
        save_file(load_file(out / "model.safetensors"), out / "model.safetensors")
    return out


CASES = [
    (
        "prices-zero",
        ["train", "prices", "--data", "{root}/zero.csv", "--out", "{tmp}/o"],
        "low is 0 at row 351",
    ),
    (
        "prices-zero-late",
        ["train", "prices", "--data", "{root}/negative-late.csv", "--out", "{tmp}/o"],
        "close is -1 at row 691",
    ),
    (
        "prices-zero-predict",
        ["predict", "--checkpoint", "{root}/px", "--data", "{root}/zero.csv"],
        "must be > 0",
    ),
    (
        "prices-zero-report",
        ["report", "prices", "--data", "{root}/zero.csv", "--out", "{tmp}/r"],
        "must be > 0",
    ),
    (
        "prices-open-outside",
        ["train", "prices", "--data", "{root}/open-above-high.csv", "--out", "{tmp}/o"],
        r"open .* lies outside \[low",
    ),
    (
        "prices-mixed-dates",
        ["train", "prices", "--data", "{root}/mixed.csv", "--out", "{tmp}/o"],
        "more than one layout",
    ),
    (
        "prices-empty",
        ["train", "prices", "--data", "{root}/empty.csv", "--out", "{tmp}/o"],
        "the file is empty",
    ),
    (
        "prices-header-only",
        ["train", "prices", "--data", "{root}/header-only.csv", "--out", "{tmp}/o"],
        "no rows under its header",
    ),
    (
        "prices-constant",
        ["train", "prices", "--data", "{root}/constant.csv", "--out", "{tmp}/o"],
        "do not move",
    ),
    (
        "report-out-is-a-file",
        [
            "report",
            "prices",
            "--data",
            "{root}/bars.csv",
            "--out",
            "{root}/a-file",
            "--models",
            "mlp",
            "--seeds",
            "1",
            "--epochs",
            "1",
        ],
        "a-file",
    ),
    (
        "classify-resume-empty",
        ["train", "classify", "--data", "{root}/reviews.csv", "--out", "{root}/killed", "--resume"],
        "nothing to resume",
    ),
    (
        "classify-big-field",
        ["train", "classify", "--data", "{root}/big-field.csv", "--out", "{tmp}/o"],
        r"line \d+: field larger than field limit",
    ),
    (
        "classify-vocab-5",
        [
            "train",
            "classify",
            "--data",
            "{root}/reviews.csv",
            "--out",
            "{tmp}/o",
            "--vocab-size",
            "5",
        ],
        "use --vocab-size 2[0-9] or more",
    ),
    (
        "classify-duplicates",
        ["train", "classify", "--data", "{root}/twice.csv", "--out", "{tmp}/o"],
        "distinct texts",
    ),
    ("nproc-64", ["train", "times", "--out", "{tmp}/o", "--nproc", "64"], "start at most"),
    (
        "generate-huge",
        ["generate", "--checkpoint", "{root}/lm", "--length", "1000000000", "the"],
        "at most 100,000",
    ),
    (
        "generate-unknown-char",
        ["generate", "--checkpoint", "{root}/lm", "thé"],
        "outside the vocabulary",
    ),
    (
        "predict-not-utf8",
        ["predict", "--checkpoint", "{root}/clf", "caf\udce9"],
        "not UTF-8 text .byte 0xe9",
    ),
    ("explain-not-utf8", ["explain", "--checkpoint", "{root}/clf", "caf\udce9"], "not UTF-8 text"),
    ("checkpoint-nan-clf", ["predict", "--checkpoint", "{broken:clf:nan}", "a plot"], "not finite"),
    ("checkpoint-nan-lm", ["generate", "--checkpoint", "{broken:lm:nan}", "the"], "not finite"),
    ("checkpoint-nan-prices", ["predict", "--checkpoint", "{broken:px:nan}"], "not finite"),
    (
        "checkpoint-stripped-digest",
        ["predict", "--checkpoint", "{broken:clf:stripped}", "a plot"],
        "carries no digest",
    ),
]


def _fill(arg, made, tmp_path):
    m = re.fullmatch(r"\{broken:(\w+:\w+)\}", arg)
    if m:
        return str(_broken(made, m.group(1), tmp_path))
    return arg.replace("{root}", str(made)).replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_case_exits_2_with_one_line(argv, message, made, tmp_path, capsys):
    code = main([_fill(a, made, tmp_path) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]


def test_day_first_bars_are_read_as_written(made, capsys):
    from attnkit.tasks import prices as pr

    got = pr.read_ohlcv(made / "day-first.csv")
    want = pr.read_ohlcv(made / "bars.csv")
    assert got.index.equals(want.index)


def test_resume_refuses_a_changed_data_file(made, tmp_path, capsys):
    data = tmp_path / "reviews.csv"
    shutil.copy(made / "reviews.csv", data)
    out = tmp_path / "run"
    args = ["train", "classify", "--data", str(data), "--hidden", "8", "--vocab-size", "40"]
    assert main([*args, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    with data.open("a") as f:
        f.write("a new row that was not there,good\n")
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--threads", "1", "--out", str(out), "--resume"]) == 2
    assert "has changed since the run" in capsys.readouterr().err


def test_terminal_escapes_in_user_text_are_printed_escaped(made, capsys):
    evil = "\x1b]0;owned\x07\x1b[2J the plot"
    assert main(["predict", "--checkpoint", str(made / "clf"), evil]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out
    assert main(["predict", "--checkpoint", str(made / "clf"), "--json", evil]) == 0
    line = capsys.readouterr().out.strip()
    assert "\x1b" not in line and json.loads(line)["input"] == evil
    clf = str(made / "clf")
    assert main(["explain", "--checkpoint", clf, evil, "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[48;2;" in out  # the explanation's own colours stay
    assert "\x1b]0;" not in out and "\x07" not in out and "\\x1b]0;owned" in out


def test_eval_reads_a_small_or_one_class_file(made, tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("text,label\nsuperb plot,good\nthe superb cast,good\n")
    assert main(["eval", "--checkpoint", str(made / "clf"), "--data", str(one), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2
    bom = tmp_path / "bom.csv"
    bom.write_text("text,label\nsuperb plot,good\ndull plot,bad\n", encoding="utf-8-sig")
    assert main(["eval", "--checkpoint", str(made / "clf"), "--data", str(bom), "--json"]) == 0
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("text,label\nsuperb plot,great\n")
    assert main(["eval", "--checkpoint", str(made / "clf"), "--data", str(unknown)]) == 2
    assert "labels the model does not know: great" in capsys.readouterr().err


def test_lm_characters_only_held_out_do_not_fail_the_run(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("abc abd abe\n" * 200 + "zyx ÿ\n" * 10)  # z, y, x, ÿ only at the end
    out = tmp_path / "lm"
    argv = ["train", "lm", "--data", str(text), "--d-model", "8", "--heads", "2", "--layers", "1"]
    assert (
        main([*argv, "--context", "16", "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    )


def test_an_internal_error_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    from attnkit.cli import showcase

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(showcase, "run", broken)
    assert main(["tour"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err and "please report it" in err


def _hierarchical(shape):
    import attnkit as ak

    out = ak.HierarchicalAttention(8, 6)(
        torch.randn(*shape), torch.zeros(shape[:2], dtype=torch.long)
    )
    b, s, w, _ = shape
    assert out.context.shape == (b, 12) and out.word_weights.shape == (b, s, w)
    assert out.sentence_weights.shape == (b, s) and not out.context.any()


LIBRARY = [
    ("hierarchical-empty-batch", lambda: _hierarchical((0, 3, 4, 8)), None),
    ("hierarchical-no-sentences", lambda: _hierarchical((2, 0, 4, 8)), None),
    ("hierarchical-no-words", lambda: _hierarchical((2, 3, 0, 8)), None),
    (
        "encoder-wrong-width",
        lambda: __import__("attnkit").TransformerEncoderLayer(8, 2, 16)(torch.randn(2, 5, 6)),
        "x last dim must be 8",
    ),
    (
        "decoder-wrong-width",
        lambda: __import__("attnkit").TransformerDecoderLayer(8, 2, 16)(
            torch.randn(2, 5, 6), torch.randn(2, 4, 8)
        ),
        "x last dim must be 8",
    ),
    (
        "kv-cache-capacity",
        lambda: __import__("attnkit").KVCache(capacity="abc"),
        "capacity must be",
    ),
    ("kv-cache-capacity-0", lambda: __import__("attnkit").KVCache(capacity=0), "capacity must be"),
]


@pytest.mark.parametrize("build, message", [c[1:] for c in LIBRARY], ids=[c[0] for c in LIBRARY])
def test_library_edges_give_a_result_or_a_value_error(build, message):
    if message is None:
        build()
    else:
        with pytest.raises(ValueError, match=message):
            build()
