"""Bad and edge inputs walked over every public layer under every kernel.

Each case has one allowed outcome class: a ValueError whose message names the problem, or a
defined result (equal to the eager kernel's, NaN where eager has NaN, zeros for fully-masked
rows). Any other exception, a silent zero, or a kernel that disagrees with eager fails.
"""

import math

import pytest
import torch

import attnkit as ak
from attnkit.functional.attend import ENV_IMPL

B, T, D = 2, 5, 8
KERNELS = ["eager", "sdpa", "chunked", "auto"]


def qkv_layers():
    """name -> (constructor, how to call it: "qk" query/keys, "mha" query/key/value, "x")."""
    return {
        "additive": (lambda: ak.AdditiveAttention(D, D, 6), "qk"),
        "dot": (lambda: ak.MultiplicativeAttention(D, score="dot"), "qk"),
        "scaled_dot": (lambda: ak.MultiplicativeAttention(D, score="scaled_dot"), "qk"),
        "general": (lambda: ak.MultiplicativeAttention(D, score="general"), "qk"),
        "local-m": (lambda: ak.LocalAttention(ak.MultiplicativeAttention(D), 1), "qk"),
        "local-p": (
            lambda: ak.LocalAttention(ak.AdditiveAttention(D, D, 6), 2, mode="predictive"),
            "qk",
        ),
        "location": (lambda: ak.LocationAttention(D, T + 3), "qk"),
        "multihead": (lambda: ak.MultiHeadAttention(D, 2, kv_heads=1), "mha"),
        "linear": (lambda: ak.LinearAttention(D, 2), "mha"),
        "self-additive": (lambda: ak.SelfAttention(D, "additive", window=2), "x"),
        "self-multiplicative": (lambda: ak.SelfAttention(D, "multiplicative", causal=True), "x"),
    }


def call(layer, kind, q, kv=None, **kw):
    kv = q if kv is None else kv
    if kind == "qk":
        return layer(q, kv, **kw)
    if kind == "mha":
        return layer(q, kv, kv, return_weights=True, **kw)
    return layer(q, **kw)


def x(*shape, **kw):
    return torch.randn(*shape, **kw)


def nan_at(t, *index):
    t = t.clone()
    t[index] = float("nan")
    return t


# (case id, builds (query, key/values or None, kwargs), "error regex" or None for a result)
QKV_CASES = [
    ("4-D query", lambda: (x(B, 1, T, D), None, {}), r"must be 3-D|must be 2-D or 3-D"),
    ("integer query", lambda: (torch.ones(B, T, D, dtype=torch.long), None, {}), "floating point"),
    ("wrong feature dim", lambda: (x(B, T, D + 1), None, {}), "last dim must be 8"),
    ("empty sequence", lambda: (x(B, 0, D), None, {}), "empty sequence"),
    ("not a tensor", lambda: ([[0.0] * D] * T, None, {}), "must be a tensor"),
    ("batch mismatch", lambda: (x(B, T, D), x(B + 1, T, D), {}), "batch sizes differ"),
    ("float mask", lambda: (x(B, T, D), None, {"mask": torch.ones(T, T)}), "torch.bool"),
    (
        "mask of key padding shape",
        lambda: (x(3, T, D), None, {"mask": torch.ones(3, T).bool()}),
        "key padding goes in key_padding_mask",
    ),
    (
        "mask too big",
        lambda: (x(B, T, D), None, {"mask": torch.ones(B, T, T + 1).bool()}),
        "does not broadcast",
    ),
    (
        "key_padding_mask (T, T)",
        lambda: (x(B, T, D), None, {"key_padding_mask": torch.ones(T, T).bool()}),
        r"key_padding_mask must be bool of shape \(B, Tk\)",
    ),
    (
        "key_padding_mask float",
        lambda: (x(B, T, D), None, {"key_padding_mask": torch.ones(B, T)}),
        "key_padding_mask must be bool",
    ),
    (
        "lengths too long",
        lambda: (x(B, T, D), None, {"lengths": torch.tensor([T + 1, 2])}),
        "exceeds max_len",
    ),
    ("negative length", lambda: (x(B, T, D), None, {"lengths": torch.tensor([-1, 2])}), ">= 0"),
    (
        "lengths of another batch",
        lambda: (x(B, T, D), None, {"lengths": torch.tensor([5, 2, 1])}),
        r"lengths must have shape \(B,\)",
    ),
    (
        "float lengths",
        lambda: (x(B, T, D), None, {"lengths": torch.tensor([5.0, 2.0])}),
        "integer tensor",
    ),
    ("fp16 into an fp32 layer", lambda: (x(B, T, D).half(), None, {}), "convert one of them"),
    ("NaN in the input", lambda: (nan_at(x(B, T, D), 0, 2, 3), None, {}), None),
    ("a row of length 0", lambda: (x(B, T, D), None, {"lengths": torch.tensor([5, 0])}), None),
    (
        "fully masked queries",
        lambda: (
            x(B, T, D),
            None,
            {"mask": torch.ones(T, T).bool().index_fill(0, torch.tensor([1]), False)},
        ),  # noqa: E501
        None,
    ),
    ("0-D mask", lambda: (x(B, T, D), None, {"mask": torch.tensor(True)}), None),
    ("1-D mask", lambda: (x(B, T, D), None, {"mask": torch.tensor([1, 1, 0, 1, 1]).bool()}), None),
    ("huge values", lambda: (x(B, T, D) * 1e4, None, {}), None),
]


def run_case(name, case, impl, monkeypatch):
    make, kind = qkv_layers()[name]
    torch.manual_seed(0)
    layer = make().eval()
    q, kv, kw = case()
    if impl != "auto":
        monkeypatch.setenv(ENV_IMPL, impl)
    try:
        return call(layer, kind, q, kv, **kw), None
    finally:
        monkeypatch.delenv(ENV_IMPL, raising=False)


def applicable(name: str, case: tuple) -> bool:
    """Self-attention layers take no separate keys, so a key-side case does not apply."""
    return not (qkv_layers()[name][1] == "x" and case[0] == "batch mismatch")


PAIRS = [(n, c) for n in qkv_layers() for c in QKV_CASES if applicable(n, c)]


@pytest.mark.robustness
@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("name,case", PAIRS, ids=[f"{n}-{c[0]}" for n, c in PAIRS])
def test_every_layer_and_kernel_gives_a_clear_error_or_a_defined_result(
    name, case, impl, monkeypatch
):
    case_id, build, error = case
    params = list(qkv_layers()[name][0]().parameters())
    if case_id == "fp16 into an fp32 layer" and not params:
        error = None  # a layer without parameters computes in the input's dtype
    if error is not None:
        with pytest.raises(ValueError, match=error):
            run_case(name, build, impl, monkeypatch)
        return
    out, _ = run_case(name, build, impl, monkeypatch)
    want, _ = run_case(name, build, "eager", monkeypatch)
    # the outputs a NaN reaches are NaN, exactly where eager has them; the rest agree
    assert torch.equal(out.context.isnan(), want.context.isnan()), case_id
    if case_id == "NaN in the input":
        assert out.context.isnan().any(), "a NaN in an unmasked input vanished"
    else:
        assert torch.isfinite(out.context).all()
    ok = ~want.context.isnan()
    tol = 1e-2 if out.context.dtype == torch.float16 else 1e-4
    torch.testing.assert_close(out.context[ok], want.context[ok], atol=tol, rtol=tol)
    if case_id == "a row of length 0":  # no key: weights 0, context 0 (before an output layer)
        assert (out.weights[1] == 0).all()
        if qkv_layers()[name][1] != "mha":
            assert (out.context[1] == 0).all()


VISION = {
    "SqueezeExcite": lambda: ak.SqueezeExcite(4, 2),
    "ChannelAttention": lambda: ak.layers.ChannelAttention(4, 2),
    "SpatialAttention": lambda: ak.SpatialAttention(3),
    "CBAM": lambda: ak.CBAM(4, 2, 3),
}
VISION_CASES = [
    ("3-D map", lambda: x(2, 4, 5), r"\(B, C, H, W\)"),
    ("integer map", lambda: torch.ones(2, 4, 5, 5, dtype=torch.long), "float feature map"),
    ("empty map", lambda: x(2, 4, 0, 5), "feature map is empty"),
    ("fp16 into fp32", lambda: x(2, 4, 5, 5).half(), "convert one of them"),
    ("NaN", lambda: nan_at(x(2, 4, 5, 5), 0, 1, 2, 2), None),
]


@pytest.mark.robustness
@pytest.mark.parametrize("case", VISION_CASES, ids=[c[0] for c in VISION_CASES])
@pytest.mark.parametrize("name", list(VISION))
def test_vision_layers(name, case):
    _, build, error = case
    layer = VISION[name]()
    if error is not None:
        with pytest.raises(ValueError, match=error):
            layer(build())
        return
    out = layer(build(), return_weights=True)
    assert isinstance(out, ak.AttentionOutput) and out.context.isnan().any()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: ak.AdditiveAttention(8, 8, 0), "hidden_dim must be an int >= 1, got 0"),
        (lambda: ak.AdditiveAttention(8, 0, 4), "key_dim must be an int >= 1"),
        (lambda: ak.MultiplicativeAttention(0), "query_dim must be an int >= 1"),
        (lambda: ak.MultiHeadAttention(0, 1), "embed_dim must be an int >= 1"),
        (lambda: ak.MultiHeadAttention(8, 0), "num_heads must be an int >= 1"),
        (lambda: ak.MultiHeadAttention(8, 2, kdim=0), "kdim must be an int >= 1"),
        (lambda: ak.LinearAttention(8, 0), "num_heads must be an int >= 1"),
        (lambda: ak.SelfAttention(8, hidden_dim=0), "hidden_dim must be an int >= 1"),
        (lambda: ak.SelfAttention(8, dropout=1.5), "dropout must be in"),
        (lambda: ak.FeedForwardAttention(8, hidden_dim=0), "hidden_dim must be an int >= 1"),
        (lambda: ak.AttentionGate(0), "dim must be an int >= 1"),
        (lambda: ak.SqueezeExcite(8, reduction=0), "reduction must be an int >= 1, got 0"),
        (lambda: ak.CBAM(8, reduction=0), "reduction must be an int >= 1"),
        (lambda: ak.SpatialAttention(0), "kernel_size must be an int >= 1"),
        (lambda: ak.SpatialAttention(4), "odd"),
        (lambda: ak.LocalAttention(ak.MultiHeadAttention(8, 2), 2), "inner must be"),
        (lambda: ak.LocalAttention(ak.MultiplicativeAttention(8), True), "width must be"),
    ],
)
def test_constructors_name_the_bad_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


ATTEND_CASES = [
    ("head dim 0", dict(q=x(B, T, 0), k=x(B, T, 0), v=x(B, T, 0)), "feature dims must be >= 1"),
    ("negative window", dict(window=(-1, 0)), "window left must be an int >= 0"),
    ("float window", dict(window=(1.5, 0)), "window left must be an int >= 0"),
    ("window not a pair", dict(window=3), r"window must be a \(left, right\) pair"),
    ("causal not bool", dict(causal="yes"), "causal must be True or False"),
    ("scale a string", dict(scale="1"), "scale must be a number"),
    (
        "callable of wrong shape",
        dict(score=lambda q, k: q.sum(-1)),
        r"score callable returned \(2, \d+\); expected",
    ),
    ("callable returning a list", dict(score=lambda q, k: [0.0]), "score callable returned list"),
    ("dropout 1", dict(dropout_p=1.0), r"dropout_p must be in \[0, 1\)"),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("size", [T, 300], ids=["T=5", "T=300"])
@pytest.mark.parametrize("case", ATTEND_CASES, ids=[c[0] for c in ATTEND_CASES])
def test_attend_validates_once_whatever_the_kernel_and_size(case, size, impl, monkeypatch):
    """The same call is refused the same way at T=5 and T=300 under every kernel."""
    _, kw, message = case
    kw = dict(kw)
    q, k, v = (kw.pop(n, None) for n in ("q", "k", "v"))
    q = x(B, size, D) if q is None else q
    k = x(B, size, D) if k is None else k
    v = x(B, size, D) if v is None else v
    if impl != "auto":
        monkeypatch.setenv(ENV_IMPL, impl)
    with pytest.raises(ValueError, match=message):
        ak.attend(q, k, v, **kw)


@pytest.mark.robustness
@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["q", "k", "scale"])
@pytest.mark.parametrize("tk", [1, 7, 300])
def test_nan_reaches_the_output_on_every_kernel(where, value, tk, impl, monkeypatch):
    """As eager: a NaN or inf in an unmasked q, k or scale is never turned into a silent 0
    (torch's fused CPU kernel returns 0 for a NaN row with one key; a row whose scores are all
    -inf from an infinite input is not a fully-masked row)."""
    q, k, v = x(B, 2, 3, D), x(B, 2, tk, D), x(B, 2, tk, D)
    scale = None
    if where == "q":
        q[0, 1, 2, 0] = value
    elif where == "k":
        k[0, 1, 0, 0] = value
    else:
        scale = value
    want = ak.attend(q, k, v, scale=scale, impl="eager", return_weights=True)
    if impl != "auto":
        monkeypatch.setenv(ENV_IMPL, impl)
    got = ak.attend(q, k, v, scale=scale, return_weights=True)
    assert want.context.isnan().any()
    assert torch.equal(got.context.isnan(), want.context.isnan())
    assert torch.equal(got.weights.isnan(), want.weights.isnan())


@pytest.mark.robustness
def test_the_additive_layer_keeps_a_nan_at_long_lengths():
    """The reported case: NaN at T=300 (the chunked kernel with the fused score) came out as 0."""
    attn = ak.AdditiveAttention(8, 8, 64)
    x_ = x(1, 300, 8)
    x_[0, 0, 0] = math.nan
    assert attn(x_, x_).context.isnan().all()


@pytest.mark.robustness
@pytest.mark.parametrize("return_weights", [True, False])
def test_half_precision_logits_beyond_65504_stay_finite(return_weights):
    """Scores and softmax run in float32 on every kernel; fp16 used to overflow to NaN on the
    eager path, which auto picks when weights are returned."""
    attn = ak.MultiplicativeAttention(64, score="dot").half()
    q = torch.full((1, 3, 64), 40.0).half()  # logits 64 * 1600 = 102400 > 65504
    out = attn(q, q, return_weights=return_weights)
    assert out.context.dtype == torch.float16 and torch.isfinite(out.context).all()
    if return_weights:
        assert torch.isfinite(out.weights).all()
        torch.testing.assert_close(out.weights.float().sum(-1), torch.ones(1, 3), atol=1e-3, rtol=0)
