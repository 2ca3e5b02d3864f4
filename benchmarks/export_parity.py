"""Every registered model kind exported at a small size and compared with PyTorch in
onnxruntime: the largest absolute difference over all outputs (probabilities, weights,
logits, decoder state) at batch sizes and lengths not seen at export, and the opset.

    python benchmarks/export_parity.py

A kind that does not export says why. Models are randomly initialised (seed 0); the tests
run the same comparisons on fewer sizes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch


def _decoder(kind: str, cfg: dict, tmp: Path) -> tuple[float, int, str]:
    from attnkit.export.sequences import OnnxDecoder, export
    from attnkit.models import build, decoding

    model = build(kind, cfg).eval()
    export(SimpleNamespace(model=model, config={"task": {}}), tmp, "times")
    graphs, worst, same = OnnxDecoder(tmp, threads=1), 0.0, True
    for b, s in ((1, 1), (3, 13), (5, 30)):
        src = torch.randint(3, 12, (b, s))
        lengths = torch.randint(1, s + 1, (b,))
        lengths[0] = s
        src = src.masked_fill(torch.arange(s) >= lengths[:, None], 0)
        want, got = decoding.greedy(model, src, lengths), decoding.greedy(graphs, src, lengths)
        same &= want.ids == got.ids
        worst = max(worst, float((want.weights - got.weights).abs().max()))
        with torch.no_grad():
            first = model.step(torch.full((b,), 1), model.start(src, lengths), 0)[0]
        g_first = graphs.step(torch.full((b,), 1), graphs.start(src, lengths), 0)[0]
        worst = max(worst, float((first - g_first).abs().max()))
    return worst, graphs.meta["opset"], "greedy tokens identical" if same else "TOKENS DIFFER"


def _lm(kind: str, cfg: dict, tmp: Path) -> tuple[float, int, str]:
    from attnkit.export.lm import OnnxLM, export
    from attnkit.models import build

    model = build(kind, cfg).eval()
    export(SimpleNamespace(model=model, config={"task": {}}), tmp)
    lm, worst, same = OnnxLM(tmp, threads=1), 0.0, True
    for b, t in ((1, 1), (3, 9), (2, 40)):
        prompt = torch.randint(0, cfg["vocab_size"], (b, t))
        with torch.no_grad():
            want, state = model.advance(prompt, model.empty_state())
            want2, _ = model.advance(want.argmax(-1)[:, None], state)
        got, g_state = lm.advance(prompt, None)
        got2, _ = lm.advance(got.argmax(-1)[:, None], g_state)
        worst = max(worst, float((want - got).abs().max()), float((want2 - got2).abs().max()))
        same &= torch.equal(model.generate(prompt, 8), lm.generate(prompt, 8))
    return worst, lm.meta["opset"], "greedy tokens identical" if same else "TOKENS DIFFER"


def _single(graph, path: Path, feeds, names) -> float:
    from attnkit.export import parity

    return parity(graph, path, feeds, names)


def _text(pooling: str, tmp: Path) -> tuple[float, int, str]:
    import json

    from attnkit.export.texts import TextGraph, export
    from attnkit.models import build

    sizes = dict(vocab_size=50, classes=3, embed_dim=8, hidden_dim=8, attention_dim=8)
    model = build("text-classifier", {**sizes, "pooling": pooling}).eval()
    run = SimpleNamespace(model=model, task=SimpleNamespace(classes=tuple("abc")), config={})
    run.config["task"] = {}
    path, _ = export(run, tmp)
    feeds = []
    for b, t in ((1, 1), (3, 11), (4, 40)):
        shape = (b, 4, t) if pooling == "han" else (b, t)
        lengths = torch.randint(1, t + 1, shape[:-1])
        feeds.append({"ids": torch.randint(1, 50, shape), "lengths": lengths})
    meta = json.loads((tmp / "model.json").read_text())
    return _single(TextGraph(model), path, feeds, list(meta["outputs"])), meta["opset"], ""


def _image(block: str, tmp: Path) -> tuple[float, int, str]:
    import json

    from attnkit.export.images import ImageGraph, export
    from attnkit.models import build

    model = build("image-classifier", {"in_channels": 1, "classes": 4, "block": block}).eval()
    path, _ = export(SimpleNamespace(model=model, config={"task": {"classes": list("abcd")}}), tmp)
    meta = json.loads((tmp / "model.json").read_text())
    feeds = [{"images": torch.rand(b, 1, s, s)} for b, s in ((1, 8), (3, 12), (5, 28))]
    return _single(ImageGraph(model), path, feeds, list(meta["outputs"])), meta["opset"], ""


def _series(name: str, tmp: Path) -> tuple[float, int, str]:
    import json

    from attnkit.export.prices import PriceGraph, export
    from attnkit.models import variants
    from attnkit.tasks import prices as pr

    f, window = len(pr.FEATURES), 20
    model = variants("series")[name].build({"features": f, "window": window, "out": 3}).eval()
    task = {"kind": "fractal", "window": window, "mean": [0.0] * f, "scale": [1.0] * f}
    task["return_scale"] = 1.0
    run = SimpleNamespace(model=model, task=task, config={"task": task})
    path = export(run, tmp)[0]
    meta = json.loads((tmp / "model.json").read_text())
    feeds = [{"features": torch.randn(b, window, f)} for b in (1, 3, 7)]
    graph = PriceGraph(model, task)
    return _single(graph, path, feeds, list(meta["outputs"])), meta["opset"], ""


def _raffel(pooling: str, tmp: Path) -> tuple[float, int, str]:
    from torch import nn

    from attnkit.export import check_graph, export_graph
    from attnkit.models import build

    model = build("raffel-ellis", {"inputs": 2, "hidden_dim": 16, "pooling": pooling}).eval()

    class Graph(nn.Module):  # what the long-memory figures read: the output and the weights
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x, lengths):
            y, weights = self.model(x, lengths, return_weights=True)
            return (y,) if weights is None else (y, weights)

    names = ["y", "weights"] if pooling == "attention" else ["y"]
    path = export_graph(
        Graph(),
        [torch.randn(2, 7, 2), torch.tensor([7, 5])],
        tmp / "model.onnx",
        input_names=["x", "lengths"],
        output_names=names,
        dynamic={"x": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}},
    )
    feeds = []
    for b, t in ((1, 1), (3, 50), (4, 300)):
        lengths = torch.randint(1, t + 1, (b,))
        feeds.append({"x": torch.randn(b, t, 2), "lengths": lengths})
    return _single(Graph(), path, feeds, names), check_graph(path)["opset"], "Python API only"


def main() -> int:
    from attnkit.export import ExportError
    from attnkit.models import ATTENTIONS, BLOCKS, variants
    from attnkit.models.classifier import CLASSIFIER_POOLINGS

    torch.manual_seed(0)
    torch.set_num_threads(1)
    s2s = dict(src_vocab_size=12, tgt_vocab_size=9, embed_dim=16, hidden_dim=32, attn_dim=16)
    tr = dict(src_vocab_size=12, tgt_vocab_size=9, d_model=16, num_heads=2, ff_dim=32)
    cases = [
        (f"seq2seq {a}", lambda d, a=a: _decoder("seq2seq", {**s2s, "attention": a}, d))
        for a in ATTENTIONS
    ]
    cases += [
        (f"transformer {p}", lambda d, p=p: _decoder("transformer", {**tr, "positions": p}, d))
        for p in ("sinusoidal", "learned", "rotary")
    ]
    cases += [
        (
            "decoder-only",
            lambda d: _lm(
                "decoder-only", dict(vocab_size=20, d_model=16, num_heads=2, layers=2), d
            ),
        ),
        (
            "lstm-lm",
            lambda d: _lm("lstm-lm", dict(vocab_size=20, embed_dim=8, hidden_dim=16, layers=2), d),
        ),
    ]
    cases += [(f"text-classifier {p}", lambda d, p=p: _text(p, d)) for p in CLASSIFIER_POOLINGS]
    cases += [(f"image-classifier {b}", lambda d, b=b: _image(b, d)) for b in BLOCKS]
    cases += [(f"series {n}", lambda d, n=n: _series(n, d)) for n in variants("series")]
    cases += [(f"raffel-ellis {p}", lambda d, p=p: _raffel(p, d)) for p in ("attention", "mean")]
    print(f"{'model kind':<34}{'max |diff|':>12}{'opset':>7}  note")
    for name, case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                worst, opset, note = case(Path(tmp))
            except ExportError as err:
                print(f"{name:<34}{'-':>12}{'-':>7}  does not export: {err}")
                continue
        print(f"{name:<34}{worst:>12.2e}{opset:>7}  {note}")
    print(f"{'captioner':<34}{'-':>12}{'-':>7}  see tests/export (its task's images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
