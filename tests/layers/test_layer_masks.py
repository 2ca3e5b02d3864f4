"""One mask convention on every layer with queries and keys, as in ``attend`` and torch SDPA:
``mask`` broadcasts to the weights' shape, so a 2-D mask is (Tq, Tk) whatever B is; key
padding has its own argument. (Layers used to read any 2-D mask as key padding (B, Tk): with
B == T a causal mask ran silently as padding.)"""

import pytest
import torch

import attnkit as ak

T, D = 5, 8


def layers():
    return {
        "additive": (ak.AdditiveAttention(D, D, 6), 3),
        "dot": (ak.MultiplicativeAttention(D, score="dot"), 3),
        "general": (ak.MultiplicativeAttention(D, score="general"), 3),
        "local-m": (ak.LocalAttention(ak.MultiplicativeAttention(D, score="general"), 2), 3),
        "local-p": (
            ak.LocalAttention(ak.AdditiveAttention(D, D, 6), 2, mode="predictive"),
            3,
        ),
        "location": (ak.LocationAttention(D, T + 2), 3),
        "self": (ak.SelfAttention(D, "additive"), 3),
        "multihead": (ak.MultiHeadAttention(D, 2), 4),
        "linear": (ak.LinearAttention(D, 2), 4),
    }


def call(name, layer, x, **kw):
    if name == "self":
        return layer(x, **kw)
    if name in ("multihead", "linear"):
        return layer(x, return_weights=True, **kw)
    return layer(x, x, **kw)


def weights_dims(dims):
    """The full weights shape of a layer: (B, Tq, Tk) or (B, H, Tq, Tk)."""
    return lambda b: (b, T, T) if dims == 3 else (b, 2, T, T)


@pytest.mark.property
@pytest.mark.parametrize("batch", [T, 3], ids=["B==T", "B!=T"])
@pytest.mark.parametrize("name", list(layers()))
def test_a_2d_mask_is_tq_by_tk_and_equals_its_full_expansion(name, batch):
    torch.manual_seed(0)
    layer, dims = layers()[name]
    layer.eval()
    x = torch.randn(batch, T, D)
    band = ak.masks.window(T, T, 1, 0)  # (Tq, Tk): query i sees keys i-1 and i
    full = band.expand(weights_dims(dims)(batch))
    two_d = call(name, layer, x, mask=band)
    expanded = call(name, layer, x, mask=full)
    torch.testing.assert_close(two_d.context, expanded.context)
    torch.testing.assert_close(two_d.weights, expanded.weights)
    # read as (Tq, Tk): every query's weights are zero outside its own row of the mask
    assert (two_d.weights.masked_select(~full) == 0).all()
    assert (two_d.weights.masked_select(full) > 0).any()


@pytest.mark.property
@pytest.mark.parametrize("name", list(layers()))
def test_key_padding_mask_equals_lengths_and_combines_with_mask(name):
    torch.manual_seed(0)
    layer, dims = layers()[name]
    layer.eval()
    x = torch.randn(3, T, D)
    lengths = torch.tensor([5, 3, 2])
    keep = ak.masks.padding(lengths, T)
    by_mask = call(name, layer, x, key_padding_mask=keep)
    by_len = call(name, layer, x, lengths=lengths)
    torch.testing.assert_close(by_mask.context, by_len.context)
    torch.testing.assert_close(by_mask.weights, by_len.weights)
    pad = keep[:, None, :] if dims == 3 else keep[:, None, None, :]
    assert (by_len.weights.masked_select(~pad.expand_as(by_len.weights)) == 0).all()
    causal = ak.masks.causal(T)
    both = call(name, layer, x, mask=causal, lengths=lengths)
    explicit = call(name, layer, x, mask=causal & pad)
    torch.testing.assert_close(both.context, explicit.context)


@pytest.mark.bad_input
@pytest.mark.parametrize("name", list(layers()))
def test_a_key_padding_mask_passed_as_mask_is_refused_when_it_cannot_be_tq_tk(name):
    layer, _ = layers()[name]
    x = torch.randn(3, T, D)
    with pytest.raises(ValueError, match="2-D mask being \\(Tq, Tk\\); key padding goes in"):
        call(name, layer, x, mask=torch.ones(3, T, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must be bool of shape \(B, Tk\)"):
        call(name, layer, x, key_padding_mask=torch.ones(T, T, dtype=torch.bool))


@pytest.mark.property
def test_one_step_queries_take_a_b_by_tk_mask():
    attn = ak.AdditiveAttention(D, D, 6)
    q, k = torch.randn(3, D), torch.randn(3, T, D)
    keep = ak.masks.padding(torch.tensor([5, 3, 1]), T)
    by_mask, by_padding = attn(q, k, mask=keep), attn(q, k, key_padding_mask=keep)
    torch.testing.assert_close(by_mask.weights, by_padding.weights)


def test_need_weights_is_a_deprecated_alias():
    mha = ak.MultiHeadAttention(D, 2)
    x = torch.randn(2, T, D)
    with pytest.warns(DeprecationWarning, match="return_weights"):
        out = mha(x, need_weights=True)
    torch.testing.assert_close(out.weights, mha(x, return_weights=True).weights)


def test_a_failing_call_leaves_the_cache_as_it_was():
    mha = ak.MultiHeadAttention(D, 2)
    cache = ak.KVCache()
    mha(torch.randn(2, 3, D), cache=cache)
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(torch.randn(2, 1, D), cache=cache, mask=torch.ones(2, 9, dtype=torch.bool))
    assert len(cache) == 3
