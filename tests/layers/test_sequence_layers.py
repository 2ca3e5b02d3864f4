import pytest
import torch

import attnkit as ak
from reference import attention_ref, ref_causal, ref_window


def f64(module):
    return module.double().eval()


def rand(*shape, grad=False):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


# --- Additive / Multiplicative -----------------------------------------------------------------


@pytest.mark.reference
def test_additive_matches_reference():
    attn = f64(ak.AdditiveAttention(6, 5, 7, bias=True))
    q, k, v = rand(2, 3, 6), rand(2, 8, 5), rand(2, 8, 4)
    lengths = torch.tensor([8, 3])
    out = attn(q, k, v, lengths=lengths)
    mask = ak.masks.padding(lengths, 8)[:, None, :]
    p = attn.params()
    ref_ctx, ref_w = attention_ref(q, k, v, "additive", p, mask)
    torch.testing.assert_close(out.context, ref_ctx)
    torch.testing.assert_close(out.weights, ref_w)


@pytest.mark.reference
@pytest.mark.parametrize("score", ["dot", "scaled_dot", "general"])
def test_multiplicative_matches_reference(score):
    dk = 6 if score != "general" else 4
    attn = f64(ak.MultiplicativeAttention(6, dk, score=score))
    q, k = rand(2, 3, 6), rand(2, 8, dk)
    mask = torch.rand(2, 3, 8) > 0.3
    out = attn(q, k, mask=mask)
    ref_ctx, ref_w = attention_ref(q, k, k, score, attn.weight, mask)
    torch.testing.assert_close(out.context, ref_ctx)
    torch.testing.assert_close(out.weights, ref_w)


@pytest.mark.property
@pytest.mark.parametrize("layer", ["additive", "general"])
def test_single_step_query_equals_one_row(layer):
    attn = (
        ak.AdditiveAttention(6, 6, 4)
        if layer == "additive"
        else ak.MultiplicativeAttention(6, score="general")
    )
    q, k = torch.randn(3, 6), torch.randn(3, 5, 6)
    lengths = torch.tensor([5, 2, 1])
    step = attn(q, k, lengths=lengths)
    seq = attn(q[:, None], k, lengths=lengths)
    assert step.context.shape == (3, 6) and step.weights.shape == (3, 5)
    torch.testing.assert_close(step.context, seq.context[:, 0])
    assert (step.weights[1, 2:] == 0).all() and (step.weights[2, 1:] == 0).all()
    torch.testing.assert_close(step.weights.sum(-1), torch.ones(3))


# --- Local attention ---------------------------------------------------------------------------


@pytest.mark.property
@pytest.mark.parametrize("inner", ["additive", "general"])
def test_local_m_with_a_covering_window_is_global(inner):
    score = (
        ak.AdditiveAttention(6, 6, 5)
        if inner == "additive"
        else ak.MultiplicativeAttention(6, score="general")
    )
    local = ak.LocalAttention(score, width=9, mode="monotonic")
    q, k = torch.randn(2, 4, 6), torch.randn(2, 9, 6)
    mask = ak.masks.padding(torch.tensor([9, 5]), 9)
    kw = {"key_padding_mask": mask}
    torch.testing.assert_close(local(q, k, **kw).context, score(q, k, **kw).context)
    torch.testing.assert_close(local(q, k, **kw).weights, score(q, k, **kw).weights)


@pytest.mark.property
def test_local_m_window_and_positions():
    local = ak.LocalAttention(ak.MultiplicativeAttention(6), width=1)
    q, k = torch.randn(2, 5, 6), torch.randn(2, 7, 6)
    w = local(q, k).weights
    band = (torch.arange(7)[None, :] - torch.arange(5)[:, None]).abs() <= 1  # p_t = t
    assert (w[:, ~band] == 0).all() and (w[:, band] > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 5))
    step = local(q[:, 3], k, positions=3)  # one decoder step at t = 3
    torch.testing.assert_close(step.weights, w[:, 3])


@pytest.mark.property
def test_local_p_weights_follow_the_predicted_centre():
    local = ak.LocalAttention(ak.MultiplicativeAttention(6, score="general"), 2, "predictive")
    q, k = torch.randn(3, 4, 6), torch.randn(3, 12, 6)
    lengths = torch.tensor([12, 8, 3])
    mask = ak.masks.padding(lengths, 12)[:, None, :]
    out = local(q, k, lengths=lengths)
    centre = local.centres(q, mask, 12)  # (B, Tq)
    assert (centre >= 0).all() and (centre <= (lengths[:, None] - 1)).all()
    dist = torch.arange(12.0) - centre[..., None]
    assert (out.weights[dist.abs() > 2] == 0).all()
    assert (out.weights[~mask.expand(3, 4, 12)] == 0).all()
    assert (out.weights.sum(-1) <= 1 + 1e-6).all()
    align = ak.masked_softmax(local.score(q, k), mask & (dist.abs() <= 2))
    torch.testing.assert_close(out.weights, align * torch.exp(-(dist**2) / 2))  # sigma = 1
    torch.testing.assert_close(out.context, out.weights @ k)


# --- Self-attention ----------------------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("score", ["additive", "multiplicative"])
@pytest.mark.parametrize(
    "window,causal", [(None, False), (2, False), ((1, 0), False), (None, True)]
)
def test_self_attention_matches_reference(score, window, causal):
    sa = f64(ak.SelfAttention(6, score=score, window=window, causal=causal, hidden_dim=5))
    x = rand(2, 7, 6)
    lengths = torch.tensor([7, 4])
    out = sa(x, lengths=lengths)
    mask = ak.masks.padding(lengths, 7)[:, None, :]
    if window is not None:
        mask = mask & ref_window(7, 7, *((window, window) if isinstance(window, int) else window))
    if causal:
        mask = mask & ref_causal(7, 7)
    if score == "additive":
        name, params = "additive", (sa.w_t.weight, sa.w_x.weight, sa.v, sa.w_x.bias)
    else:
        name, params = "general", sa.weight
    ref_ctx, ref_w = attention_ref(x, x, x, name, params, mask)
    torch.testing.assert_close(out.context, ref_ctx)
    torch.testing.assert_close(out.weights, ref_w)


@pytest.mark.property
def test_self_attention_is_permutation_equivariant():
    sa = f64(ak.SelfAttention(6, score="additive"))
    x = rand(2, 7, 6)
    perm = torch.randperm(7)
    torch.testing.assert_close(sa(x[:, perm]).context, sa(x).context[:, perm])


# --- Pooling and gating ------------------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("hidden", [None, 5])
def test_feed_forward_attention_matches_the_equations(hidden):
    pool = f64(ak.FeedForwardAttention(6, hidden_dim=hidden))
    x = rand(3, 9, 6)
    lengths = torch.tensor([9, 4, 0])
    out = pool(x, lengths=lengths)
    e = torch.tanh(pool.proj(x))
    e = (pool.out(e) if hidden else e).squeeze(-1)
    for b, n in enumerate(lengths.tolist()):
        a = torch.softmax(e[b, :n], dim=0) if n else torch.zeros(0, dtype=x.dtype)
        torch.testing.assert_close(out.weights[b, :n], a)
        assert (out.weights[b, n:] == 0).all()
        torch.testing.assert_close(out.context[b], a @ x[b, :n] if n else torch.zeros(6).double())


@pytest.mark.property
def test_attention_gate():
    gate = ak.AttentionGate(5)
    x = torch.randn(2, 4, 5)
    out = gate(x, lengths=torch.tensor([4, 2]))
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(out.context[0], x[0] * out.weights[0])
    assert (out.context[1, 2:] == 0).all()


# --- Robustness: gradcheck for every layer -----------------------------------------------------

GRADCHECK = {
    "additive": (lambda: ak.AdditiveAttention(4, 3, 5, bias=True), "qk"),
    "dot": (lambda: ak.MultiplicativeAttention(4, 4, score="dot"), "qk"),
    "scaled_dot": (lambda: ak.MultiplicativeAttention(4, 4, score="scaled_dot"), "qk"),
    "general": (lambda: ak.MultiplicativeAttention(4, 3, score="general"), "qk"),
    "local-m": (lambda: ak.LocalAttention(ak.AdditiveAttention(4, 3, 5), 1), "qk"),
    "local-p": (
        lambda: ak.LocalAttention(ak.MultiplicativeAttention(4, 3, "general"), 2, "predictive"),
        "qk",
    ),
    "location": (lambda: ak.LocationAttention(4, 6), "qk"),
    "self-additive": (lambda: ak.SelfAttention(4, "additive", window=1), "x"),
    "self-multiplicative": (lambda: ak.SelfAttention(4, "multiplicative", causal=True), "x"),
    "feed-forward": (lambda: ak.FeedForwardAttention(4, hidden_dim=3), "x"),
    "gate": (lambda: ak.AttentionGate(4), "x"),
}


@pytest.mark.robustness
@pytest.mark.parametrize("name", GRADCHECK)
def test_gradcheck_float64(name):
    make, kind = GRADCHECK[name]
    layer = f64(make())
    if kind == "qk":
        q, k = rand(2, 3, 4, grad=True), rand(2, 5, layer.key_dim or 3, grad=True)
        lengths = torch.tensor([5, 2])
        fn = lambda q, k: tuple(layer(q, k, lengths=lengths))  # noqa: E731
        inputs = (q, k)
    else:
        x = rand(2, 5, 4, grad=True)
        fn = lambda x: tuple(layer(x, lengths=torch.tensor([5, 3])))  # noqa: E731
        inputs = (x,)
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.robustness
@pytest.mark.parametrize(
    "name", ["additive", "general", "local-m", "self-additive", "feed-forward"]
)
def test_all_masked_sequences_are_finite(name):
    make, kind = GRADCHECK[name]
    layer = make()
    if kind == "qk":
        q, k = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 5, layer.key_dim)
        out = layer(q, k, lengths=torch.tensor([0, 2]))
        inp = q
    else:
        inp = torch.randn(2, 5, 4, requires_grad=True)
        out = layer(inp, lengths=torch.tensor([0, 2]))
    assert (out.context[0] == 0).all() and (out.weights[0] == 0).all()
    out.context.sum().backward()
    assert torch.isfinite(inp.grad).all()


# --- Bad input ---------------------------------------------------------------------------------


@pytest.mark.bad_input
def test_sequence_layers_reject_bad_input():
    add = ak.AdditiveAttention(6, 5, 7)
    with pytest.raises(ValueError, match="query last dim must be 6"):
        add(torch.randn(2, 3, 5), torch.randn(2, 8, 5))
    with pytest.raises(ValueError, match="keys last dim must be 5"):
        add(torch.randn(2, 3, 6), torch.randn(2, 8, 6))
    with pytest.raises(ValueError, match="batch sizes differ"):
        add(torch.randn(2, 3, 6), torch.randn(4, 8, 5))
    with pytest.raises(ValueError, match="same length Tk"):
        add(torch.randn(2, 3, 6), torch.randn(2, 8, 5), torch.randn(2, 7, 5))
    with pytest.raises(ValueError, match="empty sequence"):
        add(torch.randn(2, 3, 6), torch.randn(2, 0, 5))
    with pytest.raises(ValueError, match="exceeds max_len"):
        add(torch.randn(2, 3, 6), torch.randn(2, 8, 5), lengths=torch.tensor([9, 1]))
    with pytest.raises(ValueError, match="does not broadcast"):
        add(torch.randn(2, 3, 6), torch.randn(2, 8, 5), mask=torch.ones(2, 3, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="torch.bool"):
        add(torch.randn(2, 3, 6), torch.randn(2, 8, 5), mask=torch.ones(2, 8))
    with pytest.raises(ValueError, match="floating point"):
        add(torch.ones(2, 3, 6, dtype=torch.long), torch.randn(2, 8, 5))
    with pytest.raises(ValueError, match="needs query_dim == key_dim"):
        ak.MultiplicativeAttention(6, 5, score="dot")
    with pytest.raises(ValueError, match="score must be one of"):
        ak.MultiplicativeAttention(6, score="concat")
    with pytest.raises(ValueError, match="mode must be one of"):
        ak.LocalAttention(add, 2, mode="sliding")
    with pytest.raises(ValueError, match="width"):
        ak.LocalAttention(add, 0, mode="predictive")
    with pytest.raises(ValueError, match="x last dim must be 6"):
        ak.SelfAttention(6)(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"mask must be bool of shape \(B, T\) = \(2, 4\)"):
        ak.FeedForwardAttention(6)(torch.randn(2, 4, 6), mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        ak.AttentionGate(6)(torch.randn(2, 4, 6), mask=torch.ones(2, 4))


@pytest.mark.reference
def test_additive_with_projected_keys_equals_the_plain_path():
    attn = f64(ak.AdditiveAttention(6, 5, 7, bias=True))
    q, k = rand(2, 6), rand(2, 8, 5)
    lengths = torch.tensor([8, 3])
    plain = attn(q, k, lengths=lengths)
    fast = attn(q, k, lengths=lengths, projected_keys=attn.project_keys(k))
    torch.testing.assert_close(fast.context, plain.context)
    torch.testing.assert_close(fast.weights, plain.weights)
    with pytest.raises(ValueError, match="projected_keys must be"):
        attn(q, k, projected_keys=rand(2, 8, 6))


# --- Location-based attention (Luong et al. 2015, section 3.1) --------------------------------


@pytest.mark.reference
def test_location_attention_is_softmax_of_a_linear_map_of_the_query_over_real_positions():
    torch.manual_seed(0)
    layer = ak.LocationAttention(6, max_len=9).double()
    q, k = rand(3, 2, 6), rand(3, 7, 5)
    lengths = torch.tensor([7, 4, 1])
    out = layer(q, k, lengths=lengths)
    logits = q @ layer.proj.weight.T + layer.proj.bias  # (B, Tq, max_len)
    for b, n in enumerate(lengths.tolist()):
        want = torch.softmax(logits[b, :, :n], -1)
        torch.testing.assert_close(out.weights[b, :, :n], want)
        assert (out.weights[b, :, n:] == 0).all()
        torch.testing.assert_close(out.context[b], want @ k[b, :n])


@pytest.mark.property
def test_location_attention_weights_ignore_what_the_keys_hold():
    layer = ak.LocationAttention(4, max_len=6)
    q = torch.randn(2, 3, 4)
    a = layer(q, torch.randn(2, 5, 3)).weights
    b = layer(q, torch.randn(2, 5, 3)).weights
    torch.testing.assert_close(a, b)


@pytest.mark.bad_input
def test_location_attention_refuses_more_keys_than_positions():
    layer = ak.LocationAttention(4, max_len=3)
    with pytest.raises(ValueError, match="logits for 3 positions; got 5 keys"):
        layer(torch.randn(1, 4), torch.randn(1, 5, 2))
