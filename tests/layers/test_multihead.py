import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attnkit as ak
from attnkit.functional.attend import ENV_IMPL
from attnkit.layers import RotaryEmbedding
from attnkit.layers.multihead import packed_projections

E, H = 32, 4


@pytest.fixture(params=["eager", "sdpa"])
def kernel(request, monkeypatch):
    """Run the test under each kernel, forced through the environment variable."""
    monkeypatch.setenv(ENV_IMPL, request.param)
    return request.param


def copy_into_torch(ours: ak.MultiHeadAttention, bias: bool) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(
        ours.embed_dim,
        ours.num_heads,
        bias=bias,
        batch_first=True,
        kdim=ours.kdim,
        vdim=ours.vdim,
    )
    with torch.no_grad():
        if ref._qkv_same_embed_dim:
            ref.in_proj_weight.copy_(
                torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
            )
        else:
            ref.q_proj_weight.copy_(ours.q_proj.weight)
            ref.k_proj_weight.copy_(ours.k_proj.weight)
            ref.v_proj_weight.copy_(ours.v_proj.weight)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        if bias:
            ref.in_proj_bias.copy_(
                torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias])
            )
            ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref.eval()


CONFIGS = {
    # name: (kdim, vdim, Tq, Tk, cross, padding, causal, bias)
    "self": (None, None, 9, 9, False, False, False, True),
    "self-causal": (None, None, 9, 9, False, False, True, True),
    "self-padding": (None, None, 9, 9, False, True, False, True),
    "self-causal-padding": (None, None, 9, 9, False, True, True, True),
    "cross": (None, None, 5, 11, True, False, False, True),
    "cross-padding": (None, None, 5, 11, True, True, False, True),
    "cross-causal": (None, None, 5, 11, True, False, True, True),
    "kdim-vdim": (12, 20, 6, 10, True, False, False, True),
    "kdim-vdim-padding": (12, 20, 6, 10, True, True, False, True),
    "no-bias": (None, None, 7, 7, False, True, True, False),
}


@pytest.mark.reference
@pytest.mark.parametrize("name", CONFIGS)
def test_matches_torch_multihead_attention(name, kernel):
    kdim, vdim, tq, tk, cross, padding, causal, bias = CONFIGS[name]
    ours = ak.MultiHeadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias).eval()
    ref = copy_into_torch(ours, bias)
    b = 3
    query = torch.randn(b, tq, E)
    key = torch.randn(b, tk, kdim or E) if cross else query
    value = torch.randn(b, tk, vdim or E) if cross else query
    lengths = torch.tensor([tk, tk - 2, 3])  # no row fully masked: torch would give NaN
    keep = ak.masks.padding(lengths, tk) if padding else None
    causal_mask = ak.masks.causal(tq, tk) if causal else None

    out = ours(query, key, value, key_padding_mask=keep, causal=causal, return_weights=True)
    ref_ctx, ref_w = ref(
        query,
        key,
        value,
        key_padding_mask=None if keep is None else ~keep,  # torch: True = ignore
        attn_mask=None if causal_mask is None else ~causal_mask,
        need_weights=True,
        average_attn_weights=False,
    )
    torch.testing.assert_close(out.context, ref_ctx, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.weights, ref_w, atol=1e-5, rtol=1e-5)
    no_weights = ours(query, key, value, key_padding_mask=keep, causal=causal)
    assert no_weights.weights is None
    torch.testing.assert_close(no_weights.context, ref_ctx, atol=1e-5, rtol=1e-5)


@pytest.mark.reference
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_matches_scaled_dot_product_attention(kv_heads, kernel):
    mha = ak.MultiHeadAttention(E, H, kv_heads=kv_heads).eval()
    x = torch.randn(2, 8, E)
    mask = torch.rand(2, 1, 8, 8) > 0.3
    mask[..., 0] = True
    d = E // H
    q = mha.q_proj(x).view(2, 8, H, d).transpose(1, 2)
    k = mha.k_proj(x).view(2, 8, kv_heads, d).transpose(1, 2)
    v = mha.v_proj(x).view(2, 8, kv_heads, d).transpose(1, 2)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=kv_heads != H)
    ref = mha.out_proj(ref.transpose(1, 2).reshape(2, 8, E))
    torch.testing.assert_close(mha(x, mask=mask).context, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.property
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("capacity", [None, 2, 64], ids=["concatenating", "doubling", "reserved"])
def test_cached_decoding_equals_full_pass(kv_heads, capacity, kernel):
    mha = ak.MultiHeadAttention(E, H, kv_heads=kv_heads).eval()
    x = torch.randn(2, 10, E)
    full = mha(x, causal=True).context
    cache = ak.KVCache(capacity=capacity)
    parts = [mha(x[:, :4], causal=True, cache=cache).context]  # prefill 4 tokens
    for t in range(4, 10):
        parts.append(mha(x[:, t : t + 1], causal=True, cache=cache).context)
    assert len(cache) == 10 and cache.key.shape[-2] == 10
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    if capacity is not None:  # the keys are a view of room reserved ahead
        assert cache.key.untyped_storage().nbytes() > cache.key.numel() * cache.key.element_size()


@pytest.mark.property
@pytest.mark.parametrize("kv_heads", [4, 1])
@pytest.mark.parametrize("rotary", [False, True], ids=["plain", "rotary"])
def test_packed_projections_give_the_unpacked_result(kv_heads, rotary, kernel):
    """One stacked product for q, k and v (and one rotation of q and k together) inside the
    block; the module's own state afterwards, and no packing where gradients are on."""
    rope = RotaryEmbedding(E // H) if rotary else None
    mha = ak.MultiHeadAttention(E, H, kv_heads=kv_heads, rotary=rope).eval()
    x = torch.randn(2, 9, E)
    with torch.no_grad():
        want = mha(x, causal=True).context
        cache = ak.KVCache(capacity=9)
        with packed_projections(mha):
            assert mha._packed is not None
            full = mha(x, causal=True).context
            steps = [mha(x[:, :5], causal=True, cache=cache).context]
            steps += [mha(x[:, t : t + 1], causal=True, cache=cache).context for t in range(5, 9)]
            cross = mha(x, torch.randn(2, 4, E)).context  # not self-attention: unpacked
        assert mha._packed is None
    torch.testing.assert_close(full, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(steps, 1), want, atol=1e-5, rtol=1e-5)
    assert cross.shape == (2, 9, E)
    with packed_projections(mha):  # gradients on: the layer's own weights, which get them
        mha(x).context.sum().backward()
    assert mha.q_proj.weight.grad is not None and mha.v_proj.weight.grad.abs().sum() > 0


@pytest.mark.property
def test_cache_rejects_a_different_batch():
    mha = ak.MultiHeadAttention(E, H)
    cache = ak.KVCache()
    mha(torch.randn(2, 3, E), cache=cache)
    with pytest.raises(ValueError, match="cache holds"):
        mha(torch.randn(3, 1, E), cache=cache)


@pytest.mark.property
def test_self_attention_is_permutation_equivariant(kernel):
    mha = ak.MultiHeadAttention(E, H, kv_heads=2).eval().double()
    x = torch.randn(2, 7, E, dtype=torch.float64)
    perm = torch.randperm(7)
    torch.testing.assert_close(mha(x[:, perm]).context, mha(x).context[:, perm])


@pytest.mark.property
def test_cross_attention_is_invariant_to_permuting_memory(kernel):
    mha = ak.MultiHeadAttention(E, H, kdim=12, vdim=20).eval().double()
    q = torch.randn(2, 5, E, dtype=torch.float64)
    k, v = torch.randn(2, 9, 12, dtype=torch.float64), torch.randn(2, 9, 20, dtype=torch.float64)
    perm = torch.randperm(9)
    torch.testing.assert_close(mha(q, k[:, perm], v[:, perm]).context, mha(q, k, v).context)


@pytest.mark.property
def test_causal_output_ignores_the_future(kernel):
    mha = ak.MultiHeadAttention(E, H).eval()
    x = torch.randn(2, 8, E)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 3, E)
    torch.testing.assert_close(
        mha(y, causal=True).context[:, :5], mha(x, causal=True).context[:, :5]
    )


@pytest.mark.property
def test_dropout_only_in_training():
    mha = ak.MultiHeadAttention(E, H, dropout=0.5)
    x = torch.randn(2, 6, E)
    mha.eval()
    torch.testing.assert_close(mha(x).context, mha(x).context)
    mha.train()
    assert not torch.allclose(mha(x).context, mha(x).context)


@pytest.mark.robustness
def test_fully_masked_queries_are_finite_where_torch_gives_nan(kernel):
    ours = ak.MultiHeadAttention(E, H).eval()
    ref = copy_into_torch(ours, True)
    x = torch.randn(2, 4, E, requires_grad=True)
    keep = torch.tensor([[True] * 4, [False] * 4])
    out = ours(x, key_padding_mask=keep, return_weights=True)
    assert torch.isfinite(out.context).all()
    assert (out.weights[1] == 0).all()
    out.context.sum().backward()
    assert torch.isfinite(x.grad).all()
    ref_ctx, _ = ref(x, x, x, key_padding_mask=~keep)
    assert torch.isnan(ref_ctx[1]).all()  # the documented difference


@pytest.mark.robustness
def test_gradcheck_float64():
    mha = ak.MultiHeadAttention(8, 2, kv_heads=1).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert torch.autograd.gradcheck(
        lambda x: mha(x, key_padding_mask=mask, causal=True, return_weights=True).context, (x,)
    )


@pytest.mark.bad_input
def test_bad_construction():
    with pytest.raises(ValueError, match=r"kv_heads \(3\) must divide num_heads \(4\)"):
        ak.MultiHeadAttention(32, 4, kv_heads=3)
    with pytest.raises(ValueError, match=r"embed_dim \(30\) must be divisible by num_heads \(4\)"):
        ak.MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="dropout"):
        ak.MultiHeadAttention(32, 4, dropout=1.0)


@pytest.mark.bad_input
def test_bad_inputs():
    mha = ak.MultiHeadAttention(E, H, kdim=12)
    with pytest.raises(ValueError, match="query last dim must be 32"):
        mha(torch.randn(2, 5, 16), torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match="key last dim must be 12"):
        mha(torch.randn(2, 5, E), torch.randn(2, 5, E))
    with pytest.raises(ValueError, match="batch sizes differ"):
        mha(torch.randn(2, 5, E), torch.randn(3, 5, 12), torch.randn(3, 5, E))
    with pytest.raises(ValueError, match="empty sequence"):
        mha(torch.randn(2, 0, E), torch.randn(2, 5, 12), torch.randn(2, 5, E))
    with pytest.raises(ValueError, match="lengths differ"):
        mha(torch.randn(2, 5, E), torch.randn(2, 5, 12), torch.randn(2, 4, E))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(
            torch.randn(2, 5, E),
            torch.randn(2, 6, 12),
            torch.randn(2, 6, E),
            mask=torch.ones(2, 5, dtype=torch.bool),  # (Tq, Tk) would be (5, 6)
        )
    with pytest.raises(ValueError, match=r"key_padding_mask must be bool of shape \(B, Tk\)"):
        mha(
            torch.randn(2, 5, E),
            torch.randn(2, 6, 12),
            torch.randn(2, 6, E),
            key_padding_mask=torch.ones(2, 5, dtype=torch.bool),
        )
    with pytest.raises(ValueError, match="torch.bool"):
        mha(
            torch.randn(2, 5, E), torch.randn(2, 6, 12), torch.randn(2, 6, E), mask=torch.ones(2, 6)
        )


def test_all_known_is_and_with_unknowns():
    from attnkit.layers.multihead import all_known

    assert all_known(True, True) is True
    assert all_known(True, None) is None and all_known(None, True) is None
    assert all_known(None, False) is False and all_known(False, True) is False
    assert all_known(None, None) is None


@pytest.mark.parametrize("bad_step", [0, 2])
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_cached_non_finite_key_reaches_later_decoding_steps(bad_step, value, kernel, monkeypatch):
    """The packed decoding path checks only each step's new queries and keys; the cache
    remembers a key that was not finite, so every later step's output is NaN where the
    reference kernel's is (the fused kernel alone can hide it)."""
    torch.manual_seed(0)
    mha = ak.MultiHeadAttention(E, H, rotary=RotaryEmbedding(E // H)).eval()
    x = torch.randn(1, 5, E)
    x[0, bad_step, 0] = value

    def decode(packed: bool) -> list[torch.Tensor]:
        cache = ak.KVCache(capacity=8)
        with torch.no_grad(), packed_projections(mha) if packed else torch.no_grad():
            out = [mha(x[:, t : t + 1], causal=True, cache=cache).context for t in range(5)]
        assert cache.keys_finite is (False if packed else None)
        return out

    got = decode(packed=True)
    monkeypatch.setenv(ENV_IMPL, "eager")
    want = decode(packed=False)
    for t in range(5):
        assert torch.equal(got[t].isnan(), want[t].isnan()), t
    assert got[-1].isnan().any()
    if bad_step:
        assert not got[0].isnan().any()


def test_attend_heads_equals_attend():
    from attnkit.functional.attend import attend_heads

    torch.manual_seed(0)
    q, k, v = torch.randn(2, H, 3, 8), torch.randn(2, H, 6, 8), torch.randn(2, H, 6, 8)
    mask = torch.rand(2, 1, 3, 6) > 0.3
    for causal in (False, True):
        want = ak.attend(q, k, v, mask=mask, causal=causal, return_weights=True)
        got = attend_heads(q, k, v, mask=mask, causal=causal, return_weights=True)
        torch.testing.assert_close(got.context, want.context)
        torch.testing.assert_close(got.weights, want.weights)
    with pytest.raises(ValueError, match="causal must be True or False"):
        attend_heads(q, k, v, causal=1)
