"""``attnkit train TASK --help`` lists that task's settings only, with the defaults a run of it
really uses: a short run with nothing but its size given saves exactly the defaults the help
printed."""

import dataclasses
import json
import random
import re

import pytest

from attnkit import recipes
from attnkit.cli import main
from attnkit.recipes import base
from reference import one_cue_review, random_walk_bars

pytestmark = pytest.mark.usefixtures("one_thread")
TASKS = ["dates", "times", "pairs", "lm", "translate", "prices", "classify", "vision", "caption"]
SCHEDULE = ("epochs", "seed", "batch_size", "lr", "patience")


def _help(task: str, capsys) -> dict[str, str]:
    """flag -> its help text, from ``attnkit train TASK --help``."""
    assert main(["train", task, "--help"]) == 0
    text = capsys.readouterr().out
    flags = {}
    for block in re.split(r"\n(?=  -)", text.split("options:", 1)[1]):
        if block.strip():
            flags[block.split()[0].rstrip(",")] = " ".join(block.split())
    return flags


def _shown_default(help_text: str, model: str | None = None) -> str | None:
    """The default the help gives for ``model`` (None: the task's default model):
    "(default: X; transformer: Y)", or "(transformer only, default: Y)"."""
    found = re.search(r"\(([^()]*default[^()]*)\)", help_text)
    if not found:
        return None
    parts = found.group(1).split("; ")
    only = re.match(r"(\S+) only, default: (.*)", parts[0])
    if only:
        return only.group(2) if model == only.group(1) else None
    shown = {"": parts[0].removeprefix("default: ")}
    shown.update(p.split(": ", 1) for p in parts[1:] if ": " in p)
    return shown.get(model or "", shown[""])


@pytest.mark.parametrize("task", TASKS)
def test_each_task_lists_its_own_settings_with_the_recipes_defaults(task, capsys):
    recipe = recipes.get(task)
    flags = _help(task, capsys)
    own = {base.flag_of(f): f for f in dataclasses.fields(recipe.settings)}
    job = {"-h", "--out", "--resume", "--overwrite", "--threads", "--nproc", "--device"}
    assert set(flags) == set(own) | job  # nothing of another task
    defaults = recipe.defaults(recipe.models[0] if recipe.models else None)
    for flag, f in own.items():
        shown = _shown_default(flags[flag])
        if f.name == "model":
            assert shown == recipe.models[0]
        elif f.name in defaults and defaults[f.name] not in (None, False):
            value = defaults[f.name]
            assert shown == (",".join(value) if isinstance(value, list) else str(value)), flag


def test_the_default_lr_and_patience_are_each_tasks_own(capsys):
    shown = {
        t: (
            _shown_default(_help(t, capsys)["--lr"]),
            _shown_default(_help(t, capsys)["--patience"]),
        )
        for t in TASKS
    }
    assert shown["times"] == ("0.01", "4")
    assert shown["classify"] == ("0.002", "3") and shown["prices"] == ("0.002", "6")
    assert shown["vision"] == ("0.003", "8") and shown["caption"] == ("0.003", "5")
    assert "transformer: 0.001" in _help("times", capsys)["--lr"]


def _saved(out) -> dict:
    config = json.loads((out / "config.json").read_text())
    return {**config["config"], **config["train_config"]}


def _trained_with_help_defaults(task, argv, given, out, capsys, model=None):
    """Every setting the run was not given is saved as the help's default."""
    flags = _help(task, capsys)
    assert main(["train", task, *argv, "--out", str(out), "--threads", "1"]) == 0
    saved = _saved(out)
    recipe = recipes.get(task)
    checked = 0
    for f in dataclasses.fields(recipe.settings):
        shown = _shown_default(flags[base.flag_of(f)], model)
        if f.name in given or f.name not in saved or shown is None:
            continue
        assert str(saved[f.name]) == shown, (task, f.name)
        checked += 1
    assert checked >= 4  # the schedule at least


@pytest.mark.parametrize("model", ["seq2seq", "transformer"])
def test_a_times_run_saves_the_defaults_its_help_shows(model, tmp_path, capsys):
    size = ["--hidden", "16"] if model == "seq2seq" else ["--d-model", "16", "--heads", "2"]
    given = {"n", "epochs", "hidden_dim", "d_model", "num_heads", "model"}
    argv = ["--model", model, "--n", "200", "--epochs", "1", *size]
    _trained_with_help_defaults("times", argv, given, tmp_path / "run", capsys, model)


def test_price_and_classifier_runs_save_the_defaults_their_help_shows(tmp_path, capsys):
    bars = tmp_path / "bars.csv"
    random_walk_bars(400, seed=1).to_csv(bars, index_label="Date")
    argv = ["--data", str(bars), "--epochs", "1", "--d-model", "16"]
    _trained_with_help_defaults(
        "prices", argv, {"epochs", "d_model", "data"}, tmp_path / "p", capsys
    )
    rng = random.Random(0)
    rows = [f"{one_cue_review(rng, i % 2 == 1)},{'good' if i % 2 else 'bad'}" for i in range(80)]
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    argv = ["--data", str(reviews), "--epochs", "1", "--hidden", "8", "--vocab-size", "60"]
    given = {"epochs", "hidden_dim", "vocab_size", "data"}
    _trained_with_help_defaults("classify", argv, given, tmp_path / "c", capsys)
