"""RNN encoder-decoders as an encoder graph and a step graph: onnxruntime gives PyTorch's
state, logits and attention at batch sizes and input lengths not seen at export, and decoding
over the graphs (greedy and beam) writes PyTorch's tokens."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.export import ExportError  # noqa: E402
from attnkit.export.sequences import OnnxDecoder, export  # noqa: E402
from attnkit.models import ATTENTIONS, build, decoding  # noqa: E402
from attnkit.models.seq2seq import PRESETS  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints"


def _batch(b: int, s: int, vocab: int = 12):
    src = torch.randint(3, vocab, (b, s))
    lengths = torch.randint(1, s + 1, (b,))
    lengths[0] = s
    for row, n in enumerate(lengths.tolist()):
        src[row, n:] = 0  # padding
    return src, lengths


@pytest.mark.reference
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_attention_kind_decodes_alike_in_onnxruntime(attention, tmp_path):
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=12, tgt_vocab_size=9, attention=attention, max_output_len=9)
    model = build("seq2seq", {**cfg, **PRESETS["tiny"]}).eval()
    written = export(SimpleNamespace(model=model, config={"task": {}}), tmp_path, "dates")
    assert [p.name for p in written] == ["encoder.onnx", "step.onnx", "model.json"]
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["opset"] <= 18 and "Dropout" not in meta["operators"]
    graphs = OnnxDecoder(tmp_path, threads=1)
    worst = 0.0
    for b, s in ((1, 1), (3, 13), (4, 6)):  # exported at (2, 6): new sizes and lengths
        src, lengths = _batch(b, s)
        with torch.no_grad():
            state = model.start(src, lengths)
        onnx_state = graphs.start(src, lengths)
        for name, got in zip(graphs.names, onnx_state, strict=True):
            want = getattr(state, name)
            assert got.shape == want.shape, name
            worst = max(worst, float((got.double() - want.double()).abs().max()))
        tokens = torch.randint(3, 9, (b,))
        with torch.no_grad():
            logits, _, weights = model.step(tokens, state, 2)
        g_logits, _, g_weights = graphs.step(tokens, onnx_state, 2)
        worst = max(worst, float((g_logits - logits).abs().max()))
        worst = max(worst, float((g_weights - weights).abs().max()))
        # "none" has no attention (zeros); local-p scales its window by a Gaussian
        if attention not in ("none", "local-p"):
            torch.testing.assert_close(g_weights.sum(-1), torch.ones(b), atol=1e-5, rtol=0)
        pad = torch.arange(s)[None, :] >= lengths[:, None]
        assert bool((g_weights[pad] == 0).all())  # nothing on padding

        want, got = decoding.greedy(model, src, lengths), decoding.greedy(graphs, src, lengths)
        assert got.ids == want.ids
        worst = max(worst, float((got.weights - want.weights).abs().max()))
    assert worst < 1e-5


@pytest.mark.reference
def test_beam_search_and_a_shared_encoder_over_the_graphs(tmp_path):
    torch.manual_seed(1)
    cfg = dict(src_vocab_size=12, tgt_vocab_size=9, attention="additive", shared_encoder=True)
    model = build("seq2seq", {**cfg, "max_output_len": 8, **PRESETS["tiny"]}).eval()
    export(SimpleNamespace(model=model, config={"task": {}}), tmp_path, "dates")
    graphs = OnnxDecoder(tmp_path, threads=1)
    src, lengths = _batch(5, 9)
    want = decoding.beam_search(model, src, lengths, 3)
    got = decoding.beam_search(graphs, src, lengths, 3)
    assert got.ids == want.ids
    torch.testing.assert_close(got.scores, want.scores, atol=1e-5, rtol=0)


def test_a_state_that_is_no_tensor_is_refused():
    from attnkit.export.sequences import _fields

    @__import__("dataclasses").dataclass
    class State:
        memory: torch.Tensor
        grid: tuple

    with pytest.raises(ExportError, match="grid"):
        _fields(State(torch.zeros(1), (2, 2)))
