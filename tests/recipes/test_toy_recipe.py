"""A new task, model and recipe defined here alone, with no edit of the command line or the
explorer: ``attnkit train toy``, ``eval``, ``predict``, ``show`` and the explorer's API pick it
up from the registries.

The toy task: read five digits, write the largest. An attention-pooling model (Raffel & Ellis
2016) learns it, and its weights should fall on the largest digit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnkit import layers, models, recipes
from attnkit.cli import main
from attnkit.recipes import base
from attnkit.train import TrainConfig, fit, load_model

pytestmark = pytest.mark.usefixtures("one_thread")
LENGTH = 5


class ToyData:
    """Rows of five digits and the largest of each: the trainer's ``batch`` and ``len``."""

    def __init__(self, n: int, seed: int) -> None:
        self.x = torch.randint(0, 10, (n, LENGTH), generator=torch.Generator().manual_seed(seed))
        self.y = self.x.max(1).values

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.y[rows]


class ToyTask:
    selection_metric = "accuracy"

    def evaluate(self, model: nn.Module, data: ToyData) -> dict[str, float]:
        with torch.no_grad():
            right = (model(data.x)[0].argmax(-1) == data.y).float().mean()
        return {"accuracy": float(right)}


@dataclass
class ToyConfig:
    dim: int = 16  # embedding width


class ToyModel(nn.Module):  # registered as "toy-pooling" by the fixture, for these tests only
    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(10, cfg.dim)
        self.pool = layers.FeedForwardAttention(cfg.dim)
        self.out = nn.Linear(cfg.dim, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(self.embed(x))
        return self.out(pooled.context), pooled.weights  # (B, 10), (B, T)

    def loss(self, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x)[0], y)


@dataclass
class ToySettings(base.TrainSettings):
    dim: int | None = base.setting("embedding width", kind=base.positive_int)


@dataclass
class ToyRun:
    model: nn.Module
    config: dict


def _digits(text: str) -> torch.Tensor:
    if len(text) != LENGTH or not text.isdigit():
        raise ValueError(f"give {LENGTH} digits, got {text!r}")
    return torch.tensor([[int(c) for c in text]])


class ToyRecipe(base.Recipe):
    name, help, what = "toy", "the largest of five digits", "a toy model"
    settings = ToySettings
    options = {
        "eval": frozenset(),
        "predict": frozenset({"texts", "json"}),
        "show": frozenset({"texts", "out"}),
    }
    presets = {"epochs": 8, "lr": 1e-2, "batch_size": 64}

    def defaults(self, model=None):
        return {**base.resolved(ToyConfig, {}, TrainConfig(**self.presets)), "minutes": None}

    def train(self, settings, job):
        resume, _ = base.begin(job, "toy")
        own = frozenset({"dim"})
        model_kw, cfg = base.merge_settings(
            {**settings.given(), "progress": False}, "toy", own, frozenset(), self.presets
        )
        model = models.build("toy-pooling", model_kw)
        state = fit(
            model,
            ToyTask(),
            ToyData(2000, 0),
            ToyData(300, 1),
            cfg,
            job.out,
            {"task": {"name": "toy"}},
            resume=resume,
            log=job.log,
        )
        return base.finish(self.load, job.out, state)

    def load(self, checkpoint):
        return ToyRun(*load_model(checkpoint))

    def evaluate(self, run, options):
        return {**ToyTask().evaluate(run.model, ToyData(300, 2)), "n": 300}

    def predict(self, run, options):
        out = []
        for text in options.texts:
            logits, weights = run.model(_digits(text))
            record = {
                "input": text,
                "output": str(int(logits.argmax())),
                "weights": [weights[0].tolist()],
            }
            out.append(base.Prediction(record, f"{text}\t{record['output']}"))
        return out

    def show(self, run, options, png: Path):
        from attnkit.viz import save_heatmap

        (prediction,) = self.predict(run, options)
        weights = torch.tensor(prediction.record["weights"])
        save_heatmap(weights, list(options.texts[0]), [prediction.record["output"]], png)
        return [f"{options.texts[0]} -> {prediction.record['output']}", f"written to {png}"]

    def serve_card(self, run):
        return {**super().serve_card(run), "kind": "seq2seq", "transformer": False}

    def serve_predict(self, run, text, beam=1):
        (prediction,) = self.predict(run, base.Options(texts=[text]))
        return {
            "kind": "seq2seq",
            "input": text,
            "output": prediction.record["output"],
            "input_tokens": list(text),
            "output_tokens": [prediction.record["output"]],
            "weights": prediction.record["weights"],
        }


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    models.register("toy-pooling", ToyConfig)(ToyModel)
    recipes.register(ToyRecipe())
    out = tmp_path_factory.mktemp("toy") / "run"
    try:
        yield out
    finally:
        base.unregister("toy")
        models.registry.unregister("toy-pooling")


def test_a_recipe_defined_in_a_test_gets_every_verb(toy, capsys, tmp_path):
    assert main(["train", "toy", "--out", str(toy), "--dim", "24", "--threads", "1"]) == 0
    assert "checkpoint in" in capsys.readouterr().out
    assert json.loads((toy / "config.json").read_text())["config"]["dim"] == 24

    assert main(["eval", "--checkpoint", str(toy), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 300 and scores["accuracy"] > 0.5  # chance is about 0.1

    assert main(["predict", "--checkpoint", str(toy), "--json", "19305", "00070"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["output"] for r in rows] == ["9", "7"]
    weights = rows[1]["weights"][0]  # the largest digit gets the most attention
    assert abs(sum(weights) - 1) < 1e-5 and max(weights) == weights[3]

    png = tmp_path / "toy.png"
    assert main(["show", "--checkpoint", str(toy), "19305", "--out", str(png)]) == 0
    assert png.is_file() and "19305 -> 9" in capsys.readouterr().out

    assert main(["predict", "--checkpoint", str(toy), "--beam", "2", "12345"]) == 2
    assert "--beam does not apply to predict on a toy model" in capsys.readouterr().err
    assert main(["explain", "--checkpoint", str(toy), "12345"]) == 2
    assert "attnkit explain does not apply" in capsys.readouterr().err


def test_the_help_lists_the_toys_settings_with_its_defaults(toy, capsys):
    assert main(["train", "toy", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--dim DIM embedding width (default: 16)" in text
    assert "--lr LR Adam's peak learning rate (default: 0.01)" in text
    assert "--attention" not in text and "--pooling" not in text


def test_the_explorer_serves_the_toy(toy):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnkit.serve import create_app, load_served

    if not (toy / "config.json").exists():
        assert main(["train", "toy", "--out", str(toy), "--threads", "1"]) == 0
    client = TestClient(create_app({"toy": load_served(toy, "toy")}))
    assert client.get("/api/models").json() == [
        {"name": "toy", "kind": "seq2seq", "transformer": False}
    ]
    card = client.get("/api/models/toy").json()
    assert card["model"] == "toy-pooling" and card["parameters"] > 0
    got = client.post("/api/predict", json={"model": "toy", "text": "00070"}).json()
    assert got["output"] == "7" and got["input_tokens"] == list("00070")
    bad = client.post("/api/predict", json={"model": "toy", "text": "7"})
    assert bad.status_code == 422 and "5 digits" in bad.json()["error"]
