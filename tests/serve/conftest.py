"""Checkpoints for the explorer's tests: a times RNN, a times Transformer, a classifier, a
captioner, an image classifier with CBAM and a price model on a CSV of bars, all tiny (they
need to run, not to be good)."""

import pytest

from attnkit.cli import main
from attnkit.serve import load_served
from reference import random_walk_bars, write_reviews


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("explorer")
    common = ["--n", "300", "--epochs", "1", "--threads", "1"]
    assert (
        main(["train", "times", "--out", str(root / "times-rnn"), "--hidden", "16", *common]) == 0
    )
    assert (
        main(
            [
                "train",
                "times",
                "--model",
                "transformer",
                "--d-model",
                "16",
                "--heads",
                "2",
                "--layers",
                "2",
                "--out",
                str(root / "times-transformer"),
                *common,
            ]
        )
        == 0
    )
    write_reviews(root / "reviews.csv")
    assert (
        main(
            [
                "train",
                "classify",
                "--data",
                str(root / "reviews.csv"),
                "--out",
                str(root / "reviews"),
                "--hidden",
                "8",
                "--vocab-size",
                "40",
                "--epochs",
                "2",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "caption",
                "--n",
                "200",
                "--epochs",
                "1",
                "--hidden",
                "16",
                "--out",
                str(root / "digits-caption"),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    one_epoch = ["--epochs", "1", "--threads", "1"]
    assert (
        main(["train", "vision", "--block", "cbam", "--out", str(root / "cbam"), *one_epoch]) == 0
    )
    random_walk_bars(700, seed=4).to_csv(root / "bars.csv", index_label="Date")
    prices = ["train", "prices", "--data", str(root / "bars.csv"), "--out", str(root / "bars")]
    assert main([*prices, "--d-model", "16", "--heads", "2", *one_epoch]) == 0
    return root


@pytest.fixture(scope="session")
def served(checkpoints):
    names = ("times-rnn", "times-transformer", "reviews", "digits-caption", "cbam", "bars")
    return {n: load_served(checkpoints / n, n) for n in names}
