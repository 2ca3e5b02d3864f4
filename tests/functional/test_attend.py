import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attnkit as ak
from attnkit.functional.attend import ENV_IMPL, resolve_impl
from attnkit.functional.scores import AdditiveParams
from reference import (
    MASK_CASES,
    attention_ref,
    forced,
    full_ref_mask,
    make_qkv,
    mask_case,
    score_args,
)

IMPLS = ["eager", "sdpa"]
SCORES = ["dot", "scaled_dot", "general", "additive", "callable"]


@pytest.mark.reference
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize(
    "lead,tq,tk,d,dv", [((2,), 7, 7, 8, 8), ((3, 2), 5, 9, 8, 59), ((2, 4), 97, 33, 59, 8)]
)
def test_attend_matches_float64_reference(impl, score, case, lead, tq, tk, d, dv):
    q, k, v = make_qkv(lead, tq, tk, d, dv)
    fn, params = score_args(score, d, d)
    mask, causal, window = mask_case(case, lead, tq, tk)
    out = forced(impl)(
        q,
        k,
        v,
        score=fn,
        score_params=params,
        mask=mask,
        causal=causal,
        window=window,
        return_weights=True,
    )
    ref_ctx, ref_w = attention_ref(q, k, v, fn, params, full_ref_mask(mask, tq, tk, causal, window))
    torch.testing.assert_close(out.context.double(), ref_ctx, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out.weights.double(), ref_w, atol=2e-6, rtol=1e-4)


@pytest.mark.reference
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
def test_attend_gradients_match_reference(impl, score):
    q, k, v = make_qkv((2, 2), 6, 9, 8, grad=True)
    fn, params = score_args(score, 8, 8)
    mask = torch.rand(2, 1, 6, 9) > 0.3
    mask[0, 0, 1] = False  # one fully-masked row
    grads = []
    for use_ref in (False, True):
        q.grad = k.grad = v.grad = None
        if use_ref:
            ctx, w = attention_ref(q, k, v, fn, params, mask & ak.masks.causal(6, 9))
        else:
            ctx, w = forced(impl)(
                q,
                k,
                v,
                score=fn,
                score_params=params,
                mask=mask,
                causal=True,
                return_weights=True,
            )
        (ctx.sum() + (w * torch.arange(9.0)).sum()).backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got.double(), want.double(), atol=1e-5, rtol=1e-4)


@pytest.mark.reference
@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize("grad", [False, True])
def test_sdpa_weights_match_eager(case, grad):
    q, k, v = make_qkv((2, 4), 33, 65, 16, grad=grad)
    mask, causal, window = mask_case(case, (2, 4), 33, 65)
    kw = dict(mask=mask, causal=causal, window=window, return_weights=True)
    eager = ak.attend(q, k, v, impl="eager", **kw)
    sdpa = ak.attend(q, k, v, impl="sdpa", **kw)
    torch.testing.assert_close(sdpa.weights, eager.weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(sdpa.context, eager.context, atol=1e-5, rtol=1e-5)


@pytest.mark.reference
def test_sdpa_kernel_agrees_with_torch_sdpa():
    q, k, v = make_qkv((2, 3), 10, 10, 16)
    ours = ak.attend(q, k, v, causal=True, impl="sdpa").context
    torch.testing.assert_close(
        ours, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    )


@pytest.mark.property
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
def test_rows_sum_to_one_and_masked_keys_get_zero(impl, score):
    q, k, v = make_qkv((3,), 6, 11, 8)
    fn, params = score_args(score, 8, 8)
    mask = torch.rand(3, 6, 11) > 0.5
    mask[..., 3] = True
    w = forced(impl)(q, k, v, score=fn, score_params=params, mask=mask, return_weights=True).weights
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 6))
    assert (w[~mask] == 0).all()


@pytest.mark.property
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("tq,tk", [(8, 8), (3, 8)])
def test_causal_outputs_ignore_the_future(impl, score, tq, tk):
    q, k, v = make_qkv((2,), tq, tk, 8)
    fn, params = score_args(score, 8, 8)
    before = forced(impl)(q, k, v, score=fn, score_params=params, causal=True).context
    cut = tq - 2  # query i (aligned to key i + tk - tq) may only see keys up to that position
    k2, v2 = k.clone(), v.clone()
    k2[:, tk - tq + cut + 1 :] = torch.randn_like(k2[:, tk - tq + cut + 1 :])
    v2[:, tk - tq + cut + 1 :] = 100.0
    after = forced(impl)(q, k2, v2, score=fn, score_params=params, causal=True).context
    torch.testing.assert_close(after[:, : cut + 1], before[:, : cut + 1])
    assert not torch.allclose(after[:, cut + 1 :], before[:, cut + 1 :])


@pytest.mark.property
@pytest.mark.parametrize("impl", [*IMPLS, "chunked"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_one_causal_query_row_sees_every_key(impl, with_mask):
    # a decoding step: aligned bottom-right, the last query may attend to every key, so
    # causal=True must equal no causality at all
    q, k, v = make_qkv((2, 3), 1, 13, 8)
    mask = torch.rand(2, 1, 1, 13) > 0.4 if with_mask else None
    if mask is not None:
        mask[..., 0] = True
    run = forced(impl)
    causal = run(q, k, v, score="scaled_dot", mask=mask, causal=True, return_weights=True)
    plain = run(q, k, v, score="scaled_dot", mask=mask, return_weights=True)
    torch.testing.assert_close(causal.context, plain.context)
    torch.testing.assert_close(causal.weights, plain.weights)
    allowed = (
        torch.ones(2, 3, 1, 13, dtype=torch.bool) if mask is None else mask.expand(2, 3, 1, 13)
    )
    assert torch.equal(causal.weights > 0, allowed)
    ref_context, _ = attention_ref(q, k, v, mask=mask)
    torch.testing.assert_close(causal.context, ref_context.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(
    tq=st.integers(1, 9),
    tk=st.integers(1, 9),
    heads=st.booleans(),
    score=st.sampled_from(SCORES),
    impl=st.sampled_from(IMPLS),
    seed=st.integers(0, 2**16),
)
def test_permutation_equivariance_and_invariance(tq, tk, heads, score, impl, seed):
    """Attention(AQ, BK, BV) = A Attention(Q, K, V) (Lee et al. 2018)."""
    torch.manual_seed(seed)
    lead = (2, 3) if heads else (2,)
    q, k, v = make_qkv(lead, tq, tk, 8, 5, dtype=torch.float64)
    fn, params = score_args(score, 8, 8, dtype=torch.float64)
    pq, pk = torch.randperm(tq), torch.randperm(tk)
    base = forced(impl)(q, k, v, score=fn, score_params=params).context
    perm = forced(impl)(
        q[..., pq, :], k[..., pk, :], v[..., pk, :], score=fn, score_params=params
    ).context
    torch.testing.assert_close(perm, base[..., pq, :])


@pytest.mark.property
def test_dropout_only_when_asked():
    q, k, v = make_qkv((2,), 5, 5, 8)
    a = ak.attend(q, k, v).context
    torch.testing.assert_close(ak.attend(q, k, v, dropout_p=0.0).context, a)
    d = ak.attend(q, k, v, dropout_p=0.5, impl="eager", return_weights=True)
    assert not torch.allclose(d.context, a)
    torch.testing.assert_close(d.weights.sum(-1), torch.ones(2, 5))  # weights before dropout


@pytest.mark.property
def test_env_var_forces_a_kernel(monkeypatch):
    q, k, v = make_qkv((2,), 5, 5, 8)
    req = ak.functional.kernels.Request(
        q, k, v, "scaled_dot", None, None, None, False, None, 0.0, False
    )
    assert resolve_impl("auto", req) == "sdpa"
    monkeypatch.setenv(ENV_IMPL, "eager")
    assert resolve_impl("auto", req) == "eager"
    assert resolve_impl("sdpa", req) == "eager"  # the variable wins over impl=
    monkeypatch.setenv(ENV_IMPL, "sdpa")
    req.score = "additive"  # sdpa cannot serve it: falls back to eager
    assert resolve_impl("auto", req) == "eager"
    monkeypatch.setenv(ENV_IMPL, "fastest")
    with pytest.raises(ValueError, match=ENV_IMPL):
        ak.attend(q, k, v)


@pytest.mark.robustness
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("weights", [False, True])
def test_fully_masked_rows_give_zero_without_nan(impl, score, weights):
    q, k, v = make_qkv((2, 2), 4, 6, 8, grad=True)
    fn, params = score_args(score, 8, 8)
    mask = torch.ones(2, 1, 4, 6, dtype=torch.bool)
    mask[1, :, 2] = False  # query 2 of batch 1 sees nothing
    mask[0] = False  # batch 0 sees nothing at all
    out = forced(impl)(q, k, v, score=fn, score_params=params, mask=mask, return_weights=weights)
    assert (out.context[1, :, 2] == 0).all() and (out.context[0] == 0).all()
    if weights:
        assert (out.weights[1, :, 2] == 0).all()
    loss = out.context.square().sum() + (out.weights.sum() if weights else 0)
    loss.backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()


@pytest.mark.robustness
@pytest.mark.parametrize("impl", IMPLS)
def test_huge_logits_stay_finite(impl):
    q, k, v = make_qkv((2,), 5, 7, 4, grad=True)
    out = forced(impl)(q * 1e2, k * 1e2, v, score="dot", return_weights=True)
    assert torch.isfinite(out.context).all() and torch.isfinite(out.weights).all()
    out.context.sum().backward()
    assert torch.isfinite(q.grad).all()
    fn = lambda q, k: torch.full((*q.shape[:-1], k.shape[-2]), 1e4) * torch.sign(q[..., :1])  # noqa: E731
    out = forced(impl)(q, k, v, score=fn, return_weights=True)
    assert torch.isfinite(out.weights).all()


@pytest.mark.robustness
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["none", "causal", "padding"])
def test_low_precision_error_at_most_twice_eager(dtype, case):
    q, k, v = make_qkv((2, 4), 64, 64, 32)
    mask, causal, window = mask_case(case, (2, 4), 64, 64)
    ref = ak.attend(q, k, v, mask=mask, causal=causal, impl="eager").context
    lo = [t.to(dtype) for t in (q, k, v)]
    errors = {}
    for impl in IMPLS:
        out = forced(impl)(*lo, mask=mask, causal=causal, return_weights=True)
        errors[impl] = (out.context.float() - ref).abs().max().item()
    assert errors["sdpa"] <= 2 * errors["eager"] + 1e-6, errors


@pytest.mark.robustness
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("score", SCORES)
def test_gradcheck_float64(impl, score):
    q, k, v = make_qkv((2,), 3, 4, 5, dtype=torch.float64, grad=True)
    fn, params = score_args(score, 5, 5, dtype=torch.float64, hidden=3)
    mask = torch.tensor([True, True, False, True])

    def f(q, k, v):
        out = forced(impl)(
            q,
            k,
            v,
            score=fn,
            score_params=params,
            mask=mask,
            causal=True,
            return_weights=True,
        )
        return out.context, out.weights

    assert torch.autograd.gradcheck(f, (q, k, v))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "shapes,match",
    [
        (((2, 5, 8), (3, 5, 8), (3, 5, 8)), "batch/head dims"),
        (((2, 5, 8), (2, 6, 8), (2, 5, 8)), "same length Tk"),
        (((2, 5, 8), (2, 6, 4), (2, 6, 8)), "equal dim D"),
        (((2, 0, 8), (2, 6, 8), (2, 6, 8)), "empty sequence"),
        (((2, 5, 8), (2, 0, 8), (2, 0, 8)), "empty sequence"),
        (((5, 8), (5, 8), (5, 8)), r"\(B, T, D\)"),
        (((2, 5, 8), (2, 1, 6, 8), (2, 1, 6, 8)), "number of dims"),
    ],
)
def test_bad_shapes_raise_value_error(shapes, match):
    q, k, v = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        ak.attend(q, k, v)


@pytest.mark.bad_input
def test_bad_masks_raise_value_error():
    q, k, v = make_qkv((2,), 5, 6, 8)
    with pytest.raises(ValueError, match="does not broadcast.*Tq=5, Tk=6"):
        ak.attend(q, k, v, mask=torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        ak.attend(q, k, v, mask=torch.ones(2, 1, 5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="torch.bool"):
        ak.attend(q, k, v, mask=torch.zeros(2, 5, 6))
    with pytest.raises(ValueError, match="torch.bool"):
        ak.attend(q, k, v, mask=torch.ones(2, 5, 6, dtype=torch.int64))


@pytest.mark.bad_input
def test_bad_options_raise_value_error():
    q, k, v = make_qkv((2,), 5, 6, 8)
    with pytest.raises(ValueError, match="unknown score"):
        ak.attend(q, k, v, score="cosine")
    with pytest.raises(ValueError, match="unknown impl"):
        ak.attend(q, k, v, impl="triton")
    with pytest.raises(ValueError, match="needs score_params"):
        ak.attend(q, k, v, score="general")
    with pytest.raises(ValueError, match=r"\(Dq, Dk\) = \(8, 8\)"):
        ak.attend(q, k, v, score="general", score_params=torch.randn(8, 3))
    with pytest.raises(ValueError, match="w_k must be"):
        p = AdditiveParams(torch.randn(4, 8), torch.randn(4, 7), torch.randn(4))
        ak.attend(q, k, v, score="additive", score_params=p)
    with pytest.raises(ValueError, match="dtypes differ"):
        ak.attend(q, k.double(), v)
    with pytest.raises(ValueError, match="floating point"):
        ak.attend(q, k.long(), v)
    with pytest.raises(ValueError, match="window"):
        ak.attend(q, k, v, window=3)
    with pytest.raises(ValueError, match="dropout_p"):
        ak.attend(q, k, v, dropout_p=1.5)
