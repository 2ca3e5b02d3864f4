"""Transformer blocks against torch.nn's layers (copied weights), and their properties:
cached decoding equals uncached, the future never reaches the past, padding is never
attended, an encoder layer without positions is permutation-equivariant."""

import pytest
import torch
from torch import nn

import attnkit as ak
from attnkit.layers import (
    DecoderCache,
    LearnedPositions,
    RotaryEmbedding,
    SinusoidalPositions,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)
from reference import copy_block

E, H, FF = 16, 4, 24


@pytest.mark.reference
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_torch_with_copied_weights(norm_first):
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(
        E, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = TransformerEncoderLayer(E, H, FF, activation="relu", norm_first=norm_first).eval()
    copy_block(ours, theirs)
    x = torch.randn(3, 7, E)
    lengths = torch.tensor([7, 4, 1])
    pad = torch.arange(7)[None] >= lengths[:, None]  # torch: True = padding
    want = theirs(x, src_key_padding_mask=pad)
    got = ours(x, lengths=lengths).output
    real = ~pad
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


@pytest.mark.reference
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch_with_copied_weights(norm_first):
    torch.manual_seed(1)
    theirs = nn.TransformerDecoderLayer(
        E, H, FF, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    ).eval()
    ours = TransformerDecoderLayer(E, H, FF, activation="relu", norm_first=norm_first).eval()
    copy_block(ours, theirs)
    x, memory = torch.randn(2, 5, E), torch.randn(2, 6, E)
    mem_len = torch.tensor([6, 3])
    mem_pad = torch.arange(6)[None] >= mem_len[:, None]
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    want = theirs(x, memory, tgt_mask=causal, memory_key_padding_mask=mem_pad)
    got = ours(x, memory, memory_lengths=mem_len).output
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def decoder(rotary=False, kv_heads=None):
    torch.manual_seed(2)
    return TransformerDecoderLayer(E, H, FF, rotary=rotary, kv_heads=kv_heads).eval()


@pytest.mark.property
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked"])
@pytest.mark.parametrize("rotary,kv_heads", [(False, None), (True, None), (True, 2)])
def test_cached_decoding_equals_running_the_whole_prefix(impl, rotary, kv_heads, monkeypatch):
    monkeypatch.setenv("ATTNKIT_ATTENTION_IMPL", impl)
    layer = decoder(rotary, kv_heads)
    x, memory = torch.randn(2, 6, E), torch.randn(2, 4, E)
    mem_len = torch.tensor([4, 2])
    full = layer(x, memory, memory_lengths=mem_len, return_weights=True)
    cache = DecoderCache.empty()
    steps = [
        layer(x[:, t : t + 1], memory, memory_lengths=mem_len, cache=cache, return_weights=True)
        for t in range(6)
    ]
    got = torch.cat([s.output for s in steps], 1)
    torch.testing.assert_close(got, full.output, atol=1e-5, rtol=1e-5)
    for t, s in enumerate(steps):  # the step's weights are the full run's row t
        torch.testing.assert_close(s.self_weights[:, :, 0], full.self_weights[:, :, t, : t + 1])
        torch.testing.assert_close(s.cross_weights[:, :, 0], full.cross_weights[:, :, t])
    assert len(cache.self_attn) == 6 and len(cache.cross_attn) == 4  # memory projected once


@pytest.mark.property
def test_the_future_never_changes_earlier_outputs_and_padding_gets_no_weight():
    layer = decoder(rotary=True)
    x, memory = torch.randn(2, 6, E), torch.randn(2, 5, E)
    mem_len = torch.tensor([5, 2])
    a = layer(x, memory, memory_lengths=mem_len, return_weights=True)
    changed = x.clone()
    changed[:, 3:] = torch.randn(2, 3, E)
    b = layer(changed, memory, memory_lengths=mem_len)
    torch.testing.assert_close(a.output[:, :3], b.output[:, :3])
    assert not torch.allclose(a.output[:, 3:], b.output[:, 3:])
    assert (a.cross_weights[1, :, :, 2:] == 0).all()
    assert (a.self_weights.triu(1) == 0).all()
    torch.testing.assert_close(a.cross_weights.sum(-1), torch.ones(2, H, 6))
    torch.testing.assert_close(a.self_weights.sum(-1), torch.ones(2, H, 6))


@pytest.mark.property
def test_an_encoder_layer_without_positions_is_permutation_equivariant():
    torch.manual_seed(3)
    layer = TransformerEncoderLayer(E, H, FF).eval()
    x = torch.randn(2, 7, E)
    perm = torch.randperm(7)
    torch.testing.assert_close(layer(x[:, perm]).output, layer(x).output[:, perm])
    rotary = TransformerEncoderLayer(E, H, FF, rotary=True).eval()  # positions break it
    assert not torch.allclose(rotary(x[:, perm]).output, rotary(x).output[:, perm], atol=1e-4)


@pytest.mark.property
def test_dropout_acts_only_in_training():
    layer = TransformerEncoderLayer(E, H, FF, dropout=0.5)
    x = torch.randn(2, 5, E)
    layer.train()
    assert not torch.equal(layer(x).output, layer(x).output)
    layer.eval()
    torch.testing.assert_close(layer(x).output, layer(x).output)


@pytest.mark.property
def test_positions():
    sin = SinusoidalPositions(8, max_len=32)
    x = torch.zeros(1, 10, 8)
    torch.testing.assert_close(sin(x)[:, 4:], sin(x[:, 4:], offset=4))
    assert sin(x)[0, 5, 0] == pytest.approx(torch.sin(torch.tensor(5.0)).item(), abs=1e-6)
    learned = LearnedPositions(8, max_len=12)
    torch.testing.assert_close(learned(x)[:, 4:], learned(x[:, 4:], offset=4))
    rope = RotaryEmbedding(8)
    v = torch.randn(1, 2, 5, 8)
    torch.testing.assert_close(rope(v).norm(dim=-1), v.norm(dim=-1))  # a rotation
    torch.testing.assert_close(rope(v, offset=0)[:, :, 0], v[:, :, 0])  # position 0: identity


@pytest.mark.bad_input
def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="exceed max_len 12"):
        LearnedPositions(8, max_len=12)(torch.zeros(1, 10, 8), offset=5)
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="activation must be one of"):
        TransformerEncoderLayer(E, H, activation="tanh")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TransformerEncoderLayer(E, 5)
    mha, static = ak.MultiHeadAttention(E, H), ak.KVCache(static=True)
    mha(torch.randn(2, 1, E), torch.randn(2, 4, E), cache=static)
    assert mha(torch.randn(2, 3, E), cache=static).context.shape == (2, 3, E)  # reused, no key
    with pytest.raises(ValueError, match="static cache holds batch 2"):
        mha(torch.randn(3, 1, E), cache=static)
    with pytest.raises(ValueError, match="rotary positions are for self-attention"):
        ak.MultiHeadAttention(E, H, rotary=RotaryEmbedding(E // H))(
            torch.randn(1, 1, E), cache=ak.KVCache(static=True)
        )
