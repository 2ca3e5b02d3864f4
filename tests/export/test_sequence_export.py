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
            first, state, first_weights = model.step(torch.full((b,), 1), state, 0)
        onnx_state = graphs.start(src, lengths)
        g_first, onnx_state, g_first_weights = graphs.step(torch.full((b,), 1), onnx_state, 0)
        worst = max(worst, float((g_first - first).abs().max()))
        worst = max(worst, float((g_first_weights - first_weights).abs().max()))
        for name, got in zip(graphs.names, onnx_state, strict=True):
            want = getattr(state, name.removeprefix("state."))
            assert got.shape == want.shape, name
            worst = max(worst, float((got.double() - want.double()).abs().max()))
        tokens = torch.randint(3, 9, (b,))
        with torch.no_grad():
            logits, _, weights = model.step(tokens, state, 1)
        g_logits, _, g_weights = graphs.step(tokens, onnx_state, 1)
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
@pytest.mark.parametrize("positions", ["rotary"])  # sinusoidal: the times-transformer fixture
def test_the_transformer_exports_with_its_kv_caches_as_graph_state(positions, tmp_path):
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=12, tgt_vocab_size=9, d_model=16, num_heads=2, ff_dim=32)
    layers = dict(encoder_layers=1, decoder_layers=1, max_output_len=9, positions=positions)
    model = build("transformer", {**cfg, **layers}).eval()
    export(SimpleNamespace(model=model, config={"task": {}}), tmp_path, "times")
    meta = json.loads((tmp_path / "model.json").read_text())
    # a self-attention cache per decoder layer grows by a step; the cross-attention's follows
    # the input
    free = meta["state_free_dims"]
    assert free["state.caches.0.self_attn.key"] == {"0": "batch", "2": "steps"}
    assert free["state.caches.0.cross_attn.key"] == {"0": "batch", "2": "source"}
    graphs = OnnxDecoder(tmp_path, threads=1)
    for b, s in ((1, 2), (4, 11)):
        src, lengths = _batch(b, s)
        want, got = decoding.greedy(model, src, lengths), decoding.greedy(graphs, src, lengths)
        assert got.ids == want.ids
        assert float((got.weights - want.weights).abs().max()) < 1e-5
        pad = torch.arange(s)[None, None, :] >= lengths[:, None, None]
        assert bool((got.weights.masked_select(pad) == 0).all())
    src, lengths = _batch(3, 8)
    assert decoding.beam_search(graphs, src, lengths, 3).ids == (
        decoding.beam_search(model, src, lengths, 3).ids
    )


def test_a_state_flattens_and_unflattens_to_itself():
    from attnkit.export.sequences import flatten, unflatten
    from attnkit.layers.multihead import KVCache
    from attnkit.layers.transformer import DecoderCache

    cache = DecoderCache(
        KVCache(torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)), KVCache(static=True)
    )
    tensors, spec = flatten([cache, (torch.arange(3), 7)], "state")
    names = [n for n, _ in tensors]
    assert names == ["state.0.self_attn.key", "state.0.self_attn.value", "state.1.0"]
    again = unflatten(spec, dict(tensors))
    assert again[0].self_attn.key is tensors[0][1] and again[0].cross_attn.key is None
    assert again[0].cross_attn.static and again[1][1] == 7


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


def test_a_dimension_the_exporter_fixes_is_refused(tmp_path):
    from attnkit.export import export_graph

    class Fixed(torch.nn.Module):  # reads its length as a constant
        def forward(self, x):
            return x.reshape(x.shape[0], 6) * float(x.shape[1])

    with pytest.raises(ExportError):
        export_graph(
            Fixed(),
            [torch.ones(2, 6)],
            tmp_path / "f.onnx",
            input_names=["x"],
            output_names=["y"],
            dynamic={"x": {0: "batch", 1: "length"}},
        )
