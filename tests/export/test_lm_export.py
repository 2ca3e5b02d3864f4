"""Language models as a prompt graph and a step graph: onnxruntime gives PyTorch's logits and
state for prompts of lengths and batch sizes not seen at export, generation over the graphs
(greedy and sampled) writes PyTorch's tokens, and ``attnkit generate --runtime onnx`` writes
what ``attnkit generate`` writes."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.cli import main  # noqa: E402
from attnkit.export.lm import OnnxLM, export  # noqa: E402
from attnkit.models import build  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints"
MODELS = {
    "decoder-only": dict(vocab_size=20, d_model=16, num_heads=2, layers=1, max_len=64),
    "lstm-lm": dict(vocab_size=20, embed_dim=8, hidden_dim=16, layers=2),
}


@pytest.mark.reference
@pytest.mark.parametrize("kind", MODELS)
def test_generation_over_the_graphs_writes_pytorchs_tokens(kind, tmp_path):
    torch.manual_seed(0)
    model = build(kind, MODELS[kind]).eval()
    written = export(SimpleNamespace(model=model, config={"task": {}}), tmp_path)
    assert [p.name for p in written] == ["prompt.onnx", "step.onnx", "model.json"]
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["opset"] <= 18 and "Dropout" not in meta["operators"]
    lm = OnnxLM(tmp_path, threads=1)
    for b, t in ((1, 1), (3, 9)):  # exported at (2, 6)
        prompt = torch.randint(0, 20, (b, t))
        with torch.no_grad():
            want, state = model.advance(prompt, model.empty_state())
        got, onnx_state = lm.advance(prompt, None)
        assert float((got - want).abs().max()) < 1e-5
        from attnkit.export.sequences import STATE, flatten

        for (name, w), g in zip(flatten(state, STATE)[0], onnx_state, strict=True):
            assert g.shape == w.shape and float((g - w).abs().max()) < 1e-5, name
        assert torch.equal(lm.generate(prompt, 10), model.generate(prompt, 10))
        g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
        sampled = model.generate(prompt, 10, temperature=0.8, generator=g1)
        assert torch.equal(lm.generate(prompt, 10, temperature=0.8, generator=g2), sampled)


@pytest.mark.parametrize("name", ["lm-lstm-lm", "lm-decoder-only"])
def test_generate_with_the_onnx_runtime_equals_generate(name, tmp_path, capsys):
    ckpt, out = FIXTURES / name, tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    for extra in (["--temperature", "0"], ["--seed", "5"]):  # greedy; sampled
        args = ["In the beginning", "--length", "150", *extra]
        assert main(["generate", "--checkpoint", str(ckpt), *args]) == 0
        want = capsys.readouterr().out
        assert main(["generate", "--runtime", "onnx", "--model", str(out), *args]) == 0
        assert capsys.readouterr().out == want
    # an export of another kind is refused in one line
    assert main(["generate", "--runtime", "onnx", "--model", str(FIXTURES), "x"]) == 2
