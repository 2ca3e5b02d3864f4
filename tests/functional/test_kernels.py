"""The chunked, fused-additive and linear kernels against float64 references, and dispatch."""

from __future__ import annotations

import pytest
import torch

import attnkit as ak
from attnkit._ext import additive as fused
from attnkit.functional import masks
from attnkit.functional.attend import ENV_IMPL, resolve_impl
from attnkit.functional.kernels import Request, chunked, linear
from attnkit.functional.scores import get_score
from reference import attention_ref, forced, full_ref_mask, mask_case, ref_causal, score_args

F64 = torch.float64


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks far smaller than the sequences, so every path crosses block edges."""
    monkeypatch.setattr(chunked, "BLOCK_Q", 8)
    monkeypatch.setattr(chunked, "BLOCK_K", 16)


def _params(score, dq, dk, dtype=F64, hidden=6):
    return score_args(score, dq, dk, dtype, hidden)[1]


SCORES = ["dot", "scaled_dot", "general", "additive"]
MASKS = ["none", "causal", "window", "padding", "fully_masked_rows"]
SHAPES = [  # (lead dims, Tq, Tk, Dq, Dv)
    ((2,), 7, 7, 8, 5),
    ((2, 3), 37, 53, 59, 8),
    ((1, 2), 53, 20, 8, 8),
    ((3,), 1, 97, 8, 4),
]


@pytest.mark.reference
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"Tq{s[1]}-Tk{s[2]}-D{s[3]}")
@pytest.mark.parametrize("case", MASKS)
@pytest.mark.parametrize("score", SCORES)
def test_chunked_matches_reference_forward_and_backward(small_blocks, score, case, shape):
    lead, tq, tk, d, dv = shape
    q = torch.randn(*lead, tq, d, dtype=F64, requires_grad=True)
    k = torch.randn(*lead, tk, d, dtype=F64, requires_grad=True)
    v = torch.randn(*lead, tk, dv, dtype=F64, requires_grad=True)
    params = _params(score, d, d)
    mask, causal, window = mask_case(case, lead, tq, tk)
    full_mask = full_ref_mask(mask, tq, tk, causal, window)
    kw = {"mask": mask, "causal": causal, "window": window}
    ref_ctx, ref_w = attention_ref(q, k, v, score, params, full_mask)
    out = ak.attend(
        q, k, v, score=score, score_params=params, impl="chunked", return_weights=True, **kw
    )
    torch.testing.assert_close(out.context, ref_ctx, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(out.weights, ref_w, atol=1e-10, rtol=1e-9)
    # gradients through both outputs (the weights reach q and k through the log-sum-exp)
    probe_c, probe_w = torch.randn_like(ref_ctx), torch.randn_like(ref_w)
    got = torch.autograd.grad(
        (out.context * probe_c).sum() + (out.weights * probe_w).sum(), (q, k, v)
    )
    want = torch.autograd.grad((ref_ctx * probe_c).sum() + (ref_w * probe_w).sum(), (q, k, v))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=1e-8)


@pytest.mark.reference
@pytest.mark.parametrize("score", ["general", "additive"])
def test_chunked_gradients_reach_score_parameters(small_blocks, score):
    q = torch.randn(2, 19, 8, dtype=F64)
    k = torch.randn(2, 23, 8, dtype=F64)
    v = torch.randn(2, 23, 4, dtype=F64)
    params = _params(score, 8, 8)
    leaves = [params] if score == "general" else list(params)
    for p in leaves:
        p.requires_grad_(True)
    m = masks.padding(torch.tensor([23, 9]))[:, None, :]
    got = torch.autograd.grad(
        ak.attend(q, k, v, score=score, score_params=params, mask=m, causal=True, impl="chunked")
        .context.square()
        .sum(),
        leaves,
    )
    ref, _ = attention_ref(q, k, v, score, params, m & ref_causal(19, 23))
    want = torch.autograd.grad(ref.square().sum(), leaves)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=1e-8)


@pytest.mark.reference
@pytest.mark.parametrize("score", SCORES)
def test_chunked_gradcheck(small_blocks, score):
    q = torch.randn(1, 2, 9, 4, dtype=F64, requires_grad=True)
    k = torch.randn(1, 2, 17, 4, dtype=F64, requires_grad=True)
    v = torch.randn(1, 2, 17, 3, dtype=F64, requires_grad=True)
    params = _params(score, 4, 4, hidden=3)
    m = torch.rand(1, 2, 9, 17) > 0.3
    m[..., 2, :] = False  # a fully masked row

    def f(q, k, v):
        out = ak.attend(
            q,
            k,
            v,
            score=score,
            score_params=params,
            mask=m,
            window=(6, 2),
            impl="chunked",
            return_weights=True,
        )
        return out.context, out.weights

    assert torch.autograd.gradcheck(f, (q, k, v))


@pytest.mark.reference
@pytest.mark.parametrize("t", [1, 7, 97, 1025])
def test_chunked_odd_lengths_default_blocks(t):
    """The default block sizes with lengths that are not multiples of them."""
    q, k, v = (torch.randn(1, 2, t, 8, dtype=F64) for _ in range(3))
    got = ak.attend(q, k, v, causal=True, impl="chunked").context
    want, _ = attention_ref(q, k, v, mask=torch.ones(t, t, dtype=torch.bool).tril())
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)


@pytest.mark.property
def test_fully_masked_rows_give_zero_context_weights_and_gradient(small_blocks):
    q = torch.randn(2, 20, 8, requires_grad=True)
    k = torch.randn(2, 30, 8, requires_grad=True)
    v = torch.randn(2, 30, 8, requires_grad=True)
    m = torch.ones(2, 20, 30, dtype=torch.bool)
    m[1, 5] = False
    for score in ("scaled_dot", "additive"):
        params = _params(score, 8, 8, dtype=torch.float32)
        out = ak.attend(
            q, k, v, score=score, score_params=params, mask=m, impl="chunked", return_weights=True
        )
        assert out.context[1, 5].abs().max() == 0 and out.weights[1, 5].abs().max() == 0
        assert torch.isfinite(out.context).all() and torch.isfinite(out.weights).all()
        (gq,) = torch.autograd.grad(out.context.sum() + out.weights.sum(), q)
        assert gq[1, 5].abs().max() == 0 and torch.isfinite(gq).all()


@pytest.mark.property
def test_masked_blocks_are_skipped(small_blocks):
    """Causal attention over 64 keys visits about half of the (8 x 16) blocks."""
    calls = []

    def counting(q, k):
        calls.append(k.shape[-2])
        return q @ k.transpose(-2, -1)

    q = torch.randn(1, 64, 4)
    full = (64 // 8) * (64 // 16)
    with torch.no_grad():  # a callable score runs in the chunked kernel without grad only
        ak.attend(q, q, q, score=counting, impl="chunked")
        assert len(calls) == full
        calls.clear()
        ak.attend(q, q, q, score=counting, causal=True, impl="chunked")
        assert 0 < len(calls) < 0.7 * full
        calls.clear()
        m = torch.ones(1, 64, 64, dtype=torch.bool)
        m[..., 16:32] = False  # one key block masked by the user everywhere
        ak.attend(q, q, q, score=counting, mask=m, impl="chunked")
        assert len(calls) == full - 64 // 8


@pytest.mark.reference
def test_chunked_callable_score_forward(small_blocks):
    w = torch.randn(8, 8, dtype=F64)

    def bilinear(q, k):
        return torch.tanh(q @ w) @ k.transpose(-2, -1)

    q, k, v = (torch.randn(2, 33, 8, dtype=F64) for _ in range(3))
    with torch.no_grad():
        got = ak.attend(q, k, v, score=bilinear, causal=True, impl="chunked", return_weights=True)
    ctx, weights = attention_ref(q, k, v, bilinear, mask=ref_causal(33, 33))
    torch.testing.assert_close(got.context, ctx)
    torch.testing.assert_close(got.weights, weights)


@pytest.mark.robustness
def test_callable_score_needing_grad_is_refused_by_an_explicit_chunked():
    w = torch.randn(8, 8, requires_grad=True)
    q = torch.randn(2, 5, 8)
    req = Request(
        q=q,
        k=q,
        v=q,
        score=lambda a, b: a @ w @ b.transpose(-2, -1),
        score_fn=lambda a, b: a @ w @ b.transpose(-2, -1),
        scale=None,
        mask=None,
        causal=False,
        window=None,
        dropout_p=0.0,
        return_weights=False,
    )
    with pytest.raises(ValueError, match='impl="chunked" cannot serve this call: a callable'):
        resolve_impl("chunked", req)
    assert resolve_impl("auto", req) == "eager"
    with torch.no_grad():
        assert resolve_impl("chunked", req) == "chunked"
    out = ak.attend(q, q, q, score=lambda a, b: a @ w @ b.transpose(-2, -1))
    (g,) = torch.autograd.grad(out.context.sum(), w)
    assert g.abs().sum() > 0


@pytest.mark.reference
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_chunked_low_precision_within_eager_error(dtype):
    q, k, v = (torch.randn(2, 4, 300, 32) for _ in range(3))
    ref, _ = attention_ref(q, k, v, mask=ref_causal(300, 300))
    lo = [x.to(dtype) for x in (q, k, v)]
    err = {
        impl: (forced(impl)(*lo, causal=True).context.double() - ref).abs().max()
        for impl in ("eager", "chunked")
    }
    assert err["chunked"] <= 2 * err["eager"]


# -- the fused additive score ----------------------------------------------------------------
needs_fused = pytest.mark.skipif(not fused.available(), reason="no C++ compiler")


@needs_fused
@pytest.mark.reference
@pytest.mark.parametrize("spread", [1.0, 30.0])
def test_fused_additive_block_matches_tanh(spread):
    """spread 30 puts some |a|, |b| above the limit where the block calls tanh itself."""
    a = (torch.randn(3, 7, 13, dtype=F64) * spread).requires_grad_()
    b = (torch.randn(3, 11, 13, dtype=F64) * spread).requires_grad_()
    v = torch.randn(13, dtype=F64, requires_grad=True)
    got = fused.additive_block(a, b, v)
    want = torch.tanh(a[:, :, None] + b[:, None]) @ v
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradcheck(fused.additive_block, (a, b, v))


@needs_fused
@pytest.mark.reference
def test_fused_additive_float32_error_is_small_and_threads_agree():
    a, b = torch.randn(4, 40, 64), torch.randn(4, 50, 64)
    v = torch.randn(64)
    ref = torch.tanh(a.double()[:, :, None] + b.double()[:, None]) @ v.double()
    got = fused.additive_block(a, b, v)
    assert (got.double() - ref).abs().max() < 2e-5
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fused.additive_block(a, b, v)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, got, atol=1e-6, rtol=0)


@needs_fused
@pytest.mark.reference
def test_chunked_additive_same_with_and_without_extension(small_blocks, monkeypatch):
    q, k, v = (torch.randn(2, 40, 8, dtype=F64, requires_grad=True) for _ in range(3))
    params = _params("additive", 8, 8)
    results = []
    for on in (True, False):
        monkeypatch.setattr(chunked, "use_fused", lambda dtype, device, on=on: on)
        out = ak.attend(q, k, v, score="additive", score_params=params, causal=True, impl="chunked")
        results.append((out.context, *torch.autograd.grad(out.context.sum(), (q, k, v))))
    for x, y in zip(*results, strict=True):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-12)


@pytest.mark.robustness
def test_extension_can_be_disabled(monkeypatch):
    monkeypatch.setenv(fused.ENV_DISABLE, "1")
    assert not fused.available()
    assert not chunked.use_fused(torch.float32, torch.device("cpu"))


# -- weights on demand ------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked", "linear"])
def test_selected_rows_and_heads_equal_the_full_weights(small_blocks, impl):
    score = "linear" if impl == "linear" else "scaled_dot"
    q, k, v = (torch.randn(2, 4, 30, 8) for _ in range(3))
    m = masks.padding(torch.tensor([30, 11]))[:, None, None, :]
    full = ak.attend(
        q, k, v, score=score, mask=m, causal=True, impl="eager", return_weights=True
    ).weights
    rows, heads = [0, 29, 7], [3, 1]
    part = forced(impl)(
        q,
        k,
        v,
        score=score,
        mask=m,
        causal=True,
        return_weights=True,
        weights_rows=rows,
        weights_heads=heads,
    ).weights
    assert part.shape == (2, 2, 3, 30)
    torch.testing.assert_close(part, full[:, heads][:, :, rows], atol=1e-6, rtol=1e-5)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights_rows": [30]}, "outside"),
        ({"weights_rows": [[0]]}, "1-D"),
        ({"weights_rows": [0.5]}, "integer"),
        ({"weights_heads": [0], "three_d": True}, "4-D"),
    ],
)
def test_bad_weight_selections(kwargs, message):
    three_d = kwargs.pop("three_d", False)
    shape = (2, 30, 8) if three_d else (2, 4, 30, 8)
    q = torch.randn(*shape)
    with pytest.raises(ValueError, match=message):
        ak.attend(q, q, q, return_weights=True, **kwargs)


# -- linear attention ---------------------------------------------------------------------------
def _linear_ref(q, k, v, causal=False, key_mask=None):
    """Linear attention written as explicit loops over queries, in float64."""
    fq, fk = torch.nn.functional.elu(q.double()) + 1, torch.nn.functional.elu(k.double()) + 1
    tq, tk = q.shape[-2], k.shape[-2]
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=F64)
    for i in range(tq):
        visible = torch.ones(tk, dtype=torch.bool)
        if causal:
            visible &= torch.arange(tk) <= i + tk - tq
        w = (fq[..., i : i + 1, :] * fk).sum(-1) * visible  # (..., Tk)
        if key_mask is not None:
            w = w * key_mask
        den = w.sum(-1, keepdim=True)
        out[..., i, :] = torch.where(den > 0, (w[..., None] * v.double()).sum(-2) / den, 0.0)
    return out


@pytest.mark.reference
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq, tk", [(1, 1), (37, 37), (20, 70), (70, 20), (130, 130)])
def test_linear_matches_reference(causal, tq, tk):
    q = torch.randn(2, 3, tq, 8, dtype=F64, requires_grad=True)
    k = torch.randn(2, 3, tk, 8, dtype=F64, requires_grad=True)
    v = torch.randn(2, 3, tk, 5, dtype=F64, requires_grad=True)
    key_mask = masks.padding(torch.tensor([tk, max(tk // 3, 1)]), tk)[:, None, None, :]
    got = ak.attend(q, k, v, score="linear", causal=causal, mask=key_mask).context
    want = _linear_ref(q, k, v, causal, key_mask[:, :, 0, :].double())
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    for impl in ("eager", "linear"):  # the explicit form agrees, forward and backward
        other = forced(impl)(q, k, v, score="linear", causal=causal, mask=key_mask)
        g1 = torch.autograd.grad(got.square().sum(), (q, k, v), retain_graph=True)
        g2 = torch.autograd.grad(other.context.square().sum(), (q, k, v))
        for a, b in zip(g1, g2, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.reference
def test_linear_gradcheck():
    q, k, v = (torch.randn(1, 2, 70, 3, dtype=F64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda q, k, v: ak.attend(q, k, v, score="linear", causal=True).context, (q, k, v)
    )


@pytest.mark.reference
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_recurrent_form_matches_parallel(dtype):
    attn = ak.LinearAttention(32, num_heads=4).to(dtype)
    x = torch.randn(3, 150, 32, dtype=dtype)
    full = attn(x, causal=True).context
    state, steps = None, []
    for t in range(x.shape[1]):
        out, state = attn.step(x[:, t], state)
        steps.append(out)
    assert state.length == 150
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=0)


@pytest.mark.bad_input
def test_linear_rejects_window_and_mismatched_dims():
    q = torch.randn(1, 5, 8)
    with pytest.raises(ValueError, match="window"):
        ak.attend(q, q, q, score="linear", window=(2, 0))
    with pytest.raises(ValueError, match="equal dim"):
        ak.attend(q, torch.randn(1, 5, 4), q, score="linear")
    with pytest.raises(ValueError, match="batch"):
        ak.LinearAttention(8).step(
            torch.randn(2, 8), ak.LinearAttention(8).step(torch.randn(3, 8))[1]
        )


@pytest.mark.reference
def test_linear_per_query_mask_uses_explicit_form():
    q, k, v = (torch.randn(2, 12, 8, dtype=F64) for _ in range(3))
    m = torch.rand(2, 12, 12) > 0.5
    got = ak.attend(q, k, v, score="linear", mask=m).context
    fq, fk = (torch.nn.functional.elu(x) + 1 for x in (q, k))
    w = (fq @ fk.transpose(-2, -1)) * m
    den = w.sum(-1, keepdim=True)
    torch.testing.assert_close(got, torch.where(den > 0, w @ v / den, 0.0))


# -- dispatch ------------------------------------------------------------------------------------
def _req(q, k, score="scaled_dot", params=None, **kw):
    base = dict(
        scale=None, mask=None, causal=False, window=None, dropout_p=0.0, return_weights=False
    )
    base.update(kw)
    fn = None if score == "linear" else get_score(score, params)
    return Request(q=q, k=k, v=k, score=score, score_fn=fn, params=params, **base)


@pytest.mark.property
def test_auto_dispatch():
    small, big = torch.randn(2, 1, 8), torch.randn(2, 512, 64)
    p = _params("additive", 64, 64, torch.float32, hidden=64)
    assert resolve_impl("auto", _req(big, big)) == "sdpa"
    assert resolve_impl("auto", _req(big, big, "general", torch.randn(64, 64))) == "sdpa"
    assert resolve_impl("auto", _req(big, big, "additive", p)) == "chunked"
    ps = _params("additive", 8, 8, torch.float32)
    assert resolve_impl("auto", _req(small, small, "additive", ps)) == "eager"
    assert resolve_impl("auto", _req(small, small, return_weights=True)) == "eager"
    assert resolve_impl("auto", _req(big, big, "additive", p, dropout_p=0.1)) == "eager"
    assert resolve_impl("auto", _req(big, big, "linear")) == "linear"
    with pytest.raises(ValueError, match='impl="sdpa" cannot serve this call'):
        resolve_impl("sdpa", _req(big, big, "linear"))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "impl,score,dropout,why",
    [
        ("sdpa", "additive", 0.0, "dot-product scores"),
        ("chunked", "linear", 0.0, "no softmax to chunk"),
        ("chunked", "dot", 0.1, "no attention dropout"),
        ("linear", "dot", 0.0, 'score="linear" only'),
    ],
)
def test_an_explicit_impl_that_cannot_serve_says_why(impl, score, dropout, why):
    x = torch.randn(2, 5, 8)
    params = _params(score, 8, 8, torch.float32) if score == "additive" else None
    with pytest.raises(ValueError, match=why):
        ak.attend(x, x, x, score=score, score_params=params, dropout_p=dropout, impl=impl)
    served = ak.attend(x, x, x, score=score, score_params=params, dropout_p=dropout)
    assert served.context.shape == (2, 5, 8)  # auto serves it


@pytest.mark.reference
def test_forcing_chunked_everywhere_keeps_multihead_exact(monkeypatch):
    mha = ak.MultiHeadAttention(32, 4)
    x = torch.randn(2, 40, 32)
    pad = masks.padding(torch.tensor([40, 13]))
    want = mha(x, key_padding_mask=pad, causal=True, return_weights=True)
    monkeypatch.setenv(ENV_IMPL, "chunked")
    got = mha(x, key_padding_mask=pad, causal=True, return_weights=True)
    torch.testing.assert_close(got.context, want.context, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.weights, want.weights, atol=1e-5, rtol=1e-5)


@pytest.mark.reference
def test_general_through_sdpa_matches_reference():
    q, k, v = (torch.randn(2, 3, 25, 8, dtype=F64) for _ in range(3))
    w = torch.randn(8, 8, dtype=F64)
    out = ak.attend(
        q, k, v, score="general", score_params=w, causal=True, impl="sdpa", return_weights=True
    )
    ctx, weights = attention_ref(q, k, v, "general", w, ref_causal(25, 25))
    torch.testing.assert_close(out.context, ctx)
    torch.testing.assert_close(out.weights, weights)


def test_linear_module_exports():
    assert linear.feature_map(torch.tensor([-1e9, 0.0])).tolist() == [0.0, 1.0]


# -- the benchmark command -----------------------------------------------------------------------
def test_bench_attention_command_writes_table_json_and_plot(tmp_path, capsys):
    from attnkit.cli import main

    code = main(
        [
            "bench",
            "attention",
            "--sizes",
            "32",
            "--threads",
            "1",
            "--scores",
            "additive",
            "linear_causal",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "naive" in printed and "attend linear" in printed
    import json

    rows = json.loads((tmp_path / "attention_kernels.json").read_text())["rows"]
    assert {(r["score"], r["path"], r["T"]) for r in rows} >= {("additive", "naive", 32)}
    assert all(r["median_s_1t"] > 0 for r in rows)
    assert all(r["peak_bytes"] is None or r["peak_bytes"] >= 0 for r in rows)
    assert (tmp_path / "attention_kernels.png").stat().st_size > 1000


@pytest.mark.bad_input
def test_bench_attention_refuses_too_few_repeats(capsys):
    from attnkit.cli import main

    assert main(["bench", "attention", "--repeats", "2"]) == 2
    assert "at least 5" in capsys.readouterr().err
