"""Text classifiers as ONNX graphs: every pooling exports, and onnxruntime gives PyTorch's
probabilities and weights at batch sizes and lengths not seen at export; a trained checkpoint
exports from the command line and its graph classifies as ``attnkit predict`` does."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.cli import main  # noqa: E402
from attnkit.export import parity, run_graph  # noqa: E402
from attnkit.export.texts import TextGraph, export  # noqa: E402
from attnkit.models import build  # noqa: E402
from attnkit.models.classifier import CLASSIFIER_POOLINGS  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints"


def _feeds(documents: bool, vocab: int = 50):
    feeds = []
    for b, t in ((1, 1), (3, 11), (4, 2)):  # exported at (2, 7) / (2, 3, 5)
        if documents:
            ids, lengths = torch.randint(1, vocab, (b, 4, t)), torch.randint(1, t + 1, (b, 4))
        else:
            ids, lengths = torch.randint(1, vocab, (b, t)), torch.randint(1, t + 1, (b,))
            lengths[0] = t
        ids = ids.masked_fill(torch.arange(t) >= lengths[..., None], 0)  # padding
        feeds.append({"ids": ids, "lengths": lengths})
    return feeds


@pytest.mark.reference
@pytest.mark.parametrize("pooling", CLASSIFIER_POOLINGS)
def test_every_pooling_exports_and_equals_pytorch(pooling, tmp_path):
    torch.manual_seed(0)
    sizes = dict(vocab_size=50, classes=3, embed_dim=8, hidden_dim=8, attention_dim=8)
    model = build("text-classifier", {**sizes, "pooling": pooling}).eval()
    run = SimpleNamespace(
        model=model, task=SimpleNamespace(classes=("a", "b", "c")), config={"task": {}}
    )
    path, _ = export(run, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    names = list(meta["outputs"])
    graph = TextGraph(model)
    assert names == ["probabilities", *graph.names]
    feeds = _feeds(pooling == "han")
    assert parity(graph, path, feeds, names) < 1e-5
    for feed in feeds:
        got = run_graph(path, {k: v.numpy() for k, v in feed.items()})
        np.testing.assert_allclose(got["probabilities"].sum(-1), 1.0, atol=1e-5)
        if "weights" in got and got["weights"].ndim == 2:  # per token (the gate's: per feature)
            pad = (torch.arange(feed["ids"].shape[1]) >= feed["lengths"][:, None]).numpy()
            assert (got["weights"][pad] == 0).all()
            np.testing.assert_allclose(got["weights"].sum(-1), 1.0, atol=1e-5)
    assert meta["opset"] <= 18 and "Dropout" not in meta["operators"]


def test_a_trained_classifier_exports_and_classifies_as_predict_does(tmp_path, capsys):
    from attnkit.recipes.classify import load

    ckpt, out = FIXTURES / "classify-attention", tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    meta = json.loads((out / "model.json").read_text())
    run = load(ckpt)
    texts = ["a gripping, funny film", "dull and far too long", "the plot"]
    assert main(["predict", "--checkpoint", str(ckpt), "--json", *texts]) == 0
    want = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    from attnkit.tasks.classify import TextTask

    task = TextTask.from_config(meta["task"])  # everything the inputs need is in model.json
    for text, w in zip(texts, want, strict=True):
        ids = task.encode(text)
        got = run_graph(
            out / "model.onnx", {"ids": np.array([ids]), "lengths": np.array([len(ids)])}
        )
        classes = meta["outputs"]["probabilities"]["classes"]
        assert tuple(classes) == run.task.classes
        probs = dict(zip(classes, got["probabilities"][0].tolist(), strict=True))
        assert max(probs, key=probs.get) == w["output"]
        assert max(abs(probs[c] - w["probabilities"][c]) for c in classes) < 1e-5
