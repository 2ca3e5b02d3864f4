"""attnkit.keras against attnkit's PyTorch layers (the reference), on the backend this process
runs (torch by default; test_keras_backends.py runs this file on every other installed backend):
equal outputs and weights with converted weights, equal gradients, attnkit's mask rules,
causality with dropout on, Keras masks, symbolic tensors and the ``.keras`` round trip."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

if sys.version_info < (3, 11):  # pragma: no cover - Keras 3.15 needs Python 3.11
    pytest.skip("attnkit.keras needs Python >= 3.11 (Keras 3)", allow_module_level=True)

import keras  # noqa: E402
import torch  # noqa: E402
from keras import ops  # noqa: E402

import attnkit  # noqa: E402
from attnkit import keras as ak  # noqa: E402

BACKEND = keras.backend.backend()
B, T, S, D, DK = 3, 6, 7, 8, 6
LENGTHS = np.array([S, 4, 1])
STEPS = np.array([T, 3, 1])


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def make_data(dtype: str = "float32") -> dict:
    """Queries x (B, T, D) with padded steps, keys k (B, S, DK) with padded keys."""
    rng = np.random.default_rng(7)
    return {
        "x": rng.standard_normal((B, T, D)).astype(dtype),
        "k": rng.standard_normal((B, S, DK)).astype(dtype),
        "keys_mask": np.arange(S)[None] < LENGTHS[:, None],
        "steps_mask": np.arange(T)[None] < STEPS[:, None],
    }


@pytest.fixture
def data():
    return make_data()


def _close(got, want, atol=1e-5):
    got, want = _np(got), want.detach().numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)


# every case: (torch layer, how to call it, how to call the Keras twin) on the data above
def _qkv(torch_layer, single=False):
    def run_torch(d):
        q = _t(d["x"][:, 0] if single else d["x"])
        return torch_layer(q, _t(d["k"]), lengths=_t(LENGTHS), return_weights=True)

    def run_keras(layer, d):
        q = d["x"][:, 0] if single else d["x"]
        return layer(q, d["k"], keys_mask=d["keys_mask"], return_weights=True)

    return torch_layer, run_torch, run_keras


def _sequence(torch_layer):
    def run_torch(d):
        return torch_layer(_t(d["x"]), lengths=_t(STEPS), return_weights=True)

    def run_keras(layer, d):
        return layer(d["x"], mask=d["steps_mask"], return_weights=True)

    return torch_layer, run_torch, run_keras


def _mha(torch_layer, cross, causal):
    def run_torch(d):
        kv = (_t(d["k"]), _t(d["k"])) if cross else (None, None)
        lengths = _t(LENGTHS if cross else STEPS)
        return torch_layer(_t(d["x"]), *kv, lengths=lengths, causal=causal, return_weights=True)

    def run_keras(layer, d):
        if cross:
            return layer(
                d["x"], d["k"], d["k"], key_mask=d["keys_mask"], causal=causal, return_weights=True
            )
        return layer(d["x"], mask=d["steps_mask"], causal=causal, return_weights=True)

    return torch_layer.eval(), run_torch, run_keras


CASES = {
    "AttentionGate": lambda: _sequence(attnkit.AttentionGate(D)),
    "FeedForwardAttention": lambda: _sequence(attnkit.FeedForwardAttention(D)),
    "FeedForwardAttention-hidden": lambda: _sequence(attnkit.FeedForwardAttention(D, 5)),
    "SeqSelfAttention-additive": lambda: _sequence(
        attnkit.SelfAttention(D, "additive", window=(2, 1), hidden_dim=5)
    ),
    "SeqSelfAttention-multiplicative-causal": lambda: _sequence(
        attnkit.SelfAttention(D, "multiplicative", causal=True)
    ),
    "AdditiveAttention": lambda: _qkv(attnkit.AdditiveAttention(D, DK, 5)),
    "AdditiveAttention-bias-one-query": lambda: _qkv(
        attnkit.AdditiveAttention(D, DK, 5, bias=True), single=True
    ),
    "MultiplicativeAttention-general": lambda: _qkv(
        attnkit.MultiplicativeAttention(D, DK, score="general")
    ),
    "LocalAttention-monotonic-general": lambda: _qkv(
        attnkit.LocalAttention(attnkit.MultiplicativeAttention(D, DK, score="general"), 2)
    ),
    "LocalAttention-predictive-additive": lambda: _qkv(
        attnkit.LocalAttention(attnkit.AdditiveAttention(D, DK, 5), 2, mode="predictive")
    ),
    "MultiHeadAttention-self-causal-gqa": lambda: _mha(
        attnkit.MultiHeadAttention(D, 4, kv_heads=2), cross=False, causal=True
    ),
    "MultiHeadAttention-cross": lambda: _mha(
        attnkit.MultiHeadAttention(D, 2, kdim=DK, vdim=DK), cross=True, causal=False
    ),
}


@pytest.mark.reference
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_layer_equals_the_torch_layer(case, data):
    torch_layer, run_torch, run_keras = CASES[case]()
    layer = ak.from_torch(torch_layer)
    context, weights = run_keras(layer, data)
    want = run_torch(data)
    _close(context, want.context)
    _close(weights, want.weights)
    back = ak.to_torch(layer)  # and the weights back: the same torch layer again
    for a, b in zip(back.state_dict().values(), torch_layer.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.reference
def test_one_query_and_the_dot_scores(data):
    for score in ("dot", "scaled_dot"):
        m = attnkit.MultiplicativeAttention(D, score=score)
        layer = ak.from_torch(m)
        c, w = layer(data["x"][:, 0], data["x"], keys_mask=data["steps_mask"], return_weights=True)
        want = m(_t(data["x"][:, 0]), _t(data["x"]), lengths=_t(STEPS))
        _close(c, want.context)
        _close(w, want.weights)


@pytest.mark.reference
def test_luong_concat_is_bahdanau_with_w_and_u_side_by_side(data):
    layer = ak.MultiplicativeAttention("concat", hidden_dim=5)
    c, w = layer(data["x"], data["k"], keys_mask=data["keys_mask"], return_weights=True)
    m = ak.to_torch(layer)
    assert isinstance(m, attnkit.AdditiveAttention)
    want = m(_t(data["x"]), _t(data["k"]), lengths=_t(LENGTHS))
    _close(c, want.context)
    _close(w, want.weights)


@pytest.mark.reference
def test_local_m_positions_for_one_decoding_step(data):
    m = attnkit.LocalAttention(attnkit.MultiplicativeAttention(D, DK, score="general"), 1)
    layer = ak.from_torch(m)
    q = data["x"][:, 0]
    got = layer(q, data["k"], keys_mask=data["keys_mask"], positions=3, return_weights=True)
    want = m(_t(q), _t(data["k"]), lengths=_t(LENGTHS), positions=3)
    _close(got[1], want.weights)


@pytest.mark.reference
def test_keras_self_attention_widths_are_its_windows(data):
    """keras-self-attention's attention_width: the keys from t - w // 2, w of them; with
    history_only the last w up to t."""
    for width, history, band in ((3, False, (1, 1)), (4, False, (2, 1)), (3, True, (2, 0))):
        layer = ak.SeqSelfAttention(units=4, attention_width=width, history_only=history)
        assert layer.band == band
        _, w = layer(data["x"], return_weights=True)
        m = ak.to_torch(layer)
        _close(w, m(_t(data["x"])).weights)


def _grads(layer, loss):
    """d loss / d (each trainable variable of ``layer``), by the backend's own autodiff."""
    variables = layer.trainable_variables
    if BACKEND == "jax":
        import jax

        def f(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return loss()

        return [np.asarray(g) for g in jax.grad(f)([v.value for v in variables])]
    if BACKEND == "torch":
        for v in variables:
            v.value.grad = None
        loss().backward()
        return [v.value.grad.detach().cpu().numpy() for v in variables]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = loss()
    return [g.numpy() for g in tape.gradient(value, variables)]


def gradients(torch_layer, run_torch, run_keras, data):
    """(Keras gradients, torch gradients in the Keras layout) of every weight of the converted
    layer, for loss = sum(output * probe)."""
    layer = ak.from_torch(torch_layer)
    probe = np.random.default_rng(1).standard_normal(tuple(run_keras(layer, data)[0].shape))
    probe = probe.astype(data["x"].dtype)
    got = _grads(layer, lambda: ops.sum(run_keras(layer, data)[0] * ops.convert_to_tensor(probe)))
    (run_torch(data).context * _t(probe)).sum().backward()
    as_weights = copy.deepcopy(torch_layer)  # the torch gradients, in the Keras layout
    for p, g in zip(as_weights.parameters(), torch_layer.parameters(), strict=True):
        p.data = g.grad.clone()
    return got, [_np(v) for v in ak.from_torch(as_weights).trainable_variables]


@pytest.mark.reference
@pytest.mark.parametrize(
    "case",
    [
        "FeedForwardAttention-hidden",
        "SeqSelfAttention-additive",
        "AdditiveAttention",
        "LocalAttention-predictive-additive",
        "MultiHeadAttention-self-causal-gqa",
    ],
)
def test_gradients_equal_torch_autograd(case, data):
    torch_layer, run_torch, run_keras = CASES[case]()
    got, want = gradients(torch_layer, run_torch, run_keras, data)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-4)


@pytest.mark.reference
@pytest.mark.skipif(BACKEND == "torch", reason="Keras 3.15's torch backend rounds float64 products")
def test_float64_equals_torch_float64(data):
    """float64 where the backend computes it: JAX with x64 on (for this test only)."""
    import contextlib

    on = contextlib.nullcontext()
    if BACKEND == "jax":
        import jax

        on = jax.enable_x64(True)
    with on:
        _float64(data)


def _float64(data):
    m = attnkit.MultiHeadAttention(D, 2).double().eval()
    layer = ak.from_torch(m)
    assert layer.dtype_policy.variable_dtype == "float64"
    x = data["x"].astype("float64")
    got = layer(x, mask=data["steps_mask"], return_weights=True)
    want = m(_t(x), lengths=_t(STEPS), return_weights=True)
    _close(got[0], want.context, atol=1e-12)


CAUSAL = {
    "SeqSelfAttention": lambda: ak.SeqSelfAttention(
        units=4, history_only=True, dropout=0.3, seed=3
    ),
    "MultiHeadAttention": lambda: ak.MultiHeadAttention(2, dropout=0.3, seed=3),
}


@pytest.mark.property
@pytest.mark.parametrize("name", ["SeqSelfAttention", "MultiHeadAttention"])
@pytest.mark.parametrize("training", [False, True])
def test_causal_outputs_ignore_the_future(name, training, data):
    """Changing steps after t changes no output or weight at or before t, with dropout on in
    training and the weights requested (keras#23038 dropped the causal mask there)."""
    layer = CAUSAL[name]()
    kw = {"causal": True} if name == "MultiHeadAttention" else {}
    x = data["x"]
    future = x.copy()
    future[:, 4:] = 100.0 * np.random.default_rng(2).standard_normal(future[:, 4:].shape)
    layer(x, return_weights=True, training=training, **kw)  # build
    state = _np(layer.seed_generator.state)
    a, wa = layer(x, return_weights=True, training=training, **kw)
    layer.seed_generator.state.assign(state)  # the same dropout draws for the second call
    b, wb = layer(future, return_weights=True, training=training, **kw)
    np.testing.assert_array_equal(_np(a)[:, :4], _np(b)[:, :4])
    np.testing.assert_array_equal(_np(wa)[..., :4, :], _np(wb)[..., :4, :])
    assert not np.any(_np(wa)[..., :4, 4:])  # the future's weights are 0
    if training:  # dropout was really on: the draws differ from no dropout at all
        c = layer(x, training=False, **kw)
        assert not np.allclose(_np(a), _np(c))


@pytest.mark.property
def test_masked_keys_get_zero_and_fully_masked_rows_stay_finite(data):
    k = data["k"].copy()
    k[1, 4:] = np.nan  # padding holding NaN reaches no output
    none = np.zeros_like(data["keys_mask"])
    none[0] = True  # example 1 and 2: no key at all
    for layer in (
        ak.AdditiveAttention(5),
        ak.MultiplicativeAttention("general"),
        ak.LocalAttention(2, score="additive", hidden_dim=4, mode="predictive"),
    ):
        c, w = layer(data["x"], k, keys_mask=data["keys_mask"], return_weights=True)
        c, w = _np(c), _np(w)
        assert np.isfinite(c).all() and np.isfinite(w).all()
        assert not np.any(w[~np.broadcast_to(data["keys_mask"][:, None], w.shape)])
        c, w = layer(data["x"], data["k"], keys_mask=none, return_weights=True)
        assert not np.any(_np(w)[1:]) and not np.any(_np(c)[1:])
        assert np.isfinite(_np(c)).all()
    rows = np.ones((T, T), bool)
    rows[2] = False  # one query may see nothing
    c, w = ak.MultiHeadAttention(2)(data["x"], attention_mask=rows, return_weights=True)
    assert not np.any(_np(w)[:, :, 2]) and np.isfinite(_np(c)).all()


@pytest.mark.property
def test_keras_masks_from_an_embedding_are_honoured():
    """Embedding(mask_zero=True) upstream gives the same result as the mask given by hand."""
    tokens = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0]])
    inputs = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(12, D, mask_zero=True)
    self_attention = ak.SeqSelfAttention(units=4)
    pool = ak.FeedForwardAttention()
    pooled = pool(self_attention(emb(inputs)))
    model = keras.Model(inputs, pooled)
    x = emb(tokens)
    mask = tokens != 0
    by_hand = pool(self_attention(x, mask=mask), mask=mask)
    np.testing.assert_allclose(_np(model(tokens)), _np(by_hand), atol=1e-6)
    auto = pool(self_attention(x))  # eagerly too, the embedding's output carries its mask
    np.testing.assert_allclose(_np(auto), _np(by_hand), atol=1e-6)
    every = np.ones_like(mask)
    unmasked = pool(self_attention(x, mask=every), mask=every)
    assert not np.allclose(_np(unmasked), _np(by_hand))


@pytest.mark.property
def test_weights_come_out_of_symbolic_tensors():
    inputs = keras.Input((None, D))
    states = keras.layers.Dense(D)(inputs)
    outs = [
        ak.AdditiveAttention(4)(states[:, -1], states, return_weights=True)[1],
        ak.MultiHeadAttention(2)(states, causal=True, return_weights=True)[1],
        ak.SeqSelfAttention(units=4, return_attention=True)(states)[1],
        ak.LocalAttention(1)(states, states, return_weights=True)[1],
    ]
    model = keras.Model(inputs, outs)
    got = model(np.ones((2, 5, D), "float32"))
    assert [tuple(g.shape) for g in got] == [(2, 5), (2, 2, 5, 5), (2, 5, 5), (2, 5, 5)]


@pytest.mark.bad_input
def test_clear_errors():
    with pytest.raises(ValueError, match="score must be one of"):
        ak.MultiplicativeAttention("cosine")
    with pytest.raises(ValueError, match="hidden_dim"):
        ak.MultiplicativeAttention("concat")
    with pytest.raises(ValueError, match="same size|one size"):
        ak.MultiplicativeAttention("dot")(np.ones((1, 2, 4)), np.ones((1, 3, 5)))
    with pytest.raises(ValueError, match="kv_heads"):
        ak.MultiHeadAttention(4, kv_heads=3)
    with pytest.raises(ValueError, match="divisible"):
        ak.MultiHeadAttention(3)(np.ones((1, 2, 8), "float32"))
    with pytest.raises(ValueError, match="dropout"):
        ak.SeqSelfAttention(dropout=1.5)
    with pytest.raises(ValueError, match="attention_width or window"):
        ak.SeqSelfAttention(attention_width=3, window=2)
    with pytest.raises(ValueError, match="width must be"):
        ak.LocalAttention(0, mode="predictive")
    with pytest.raises(ValueError, match="from_torch converts"):
        ak.from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="build the"):
        ak.to_torch(ak.AdditiveAttention(3))


def _model():
    """A model of every layer, its input (token ids, 0 = padding) and its outputs."""
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(16, D, mask_zero=True)(inputs)
    x = ak.AttentionGate()(x)
    x = ak.SeqSelfAttention(units=4, attention_width=3)(x)
    x = ak.MultiHeadAttention(2, kv_heads=1)(x, causal=True)
    x = ak.AdditiveAttention(4)(x, x)
    x = ak.MultiplicativeAttention("general")(x, x)
    x, w = ak.LocalAttention(1, mode="predictive", score="scaled_dot")(x, x, return_weights=True)
    pooled = ak.FeedForwardAttention(hidden_dim=3)(x)
    return keras.Model(inputs, [keras.layers.Dense(3)(pooled), w])


LOAD = """
import json, sys
import numpy as np, keras
import attnkit.keras  # registers the layers
model = keras.models.load_model(sys.argv[1])  # safe_mode=True, the default
out = model.predict(np.array(json.loads(sys.argv[2])), verbose=0)
np.save(sys.argv[3], out[0]); np.save(sys.argv[4], out[1])
"""


def test_a_saved_model_reloads_in_a_new_process_with_safe_mode(tmp_path):
    model = _model()
    tokens = [[1, 2, 3, 4, 0], [5, 6, 0, 0, 0], [7, 8, 9, 10, 11]]
    want = model.predict(np.array(tokens), verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    out = [tmp_path / "pred.npy", tmp_path / "weights.npy"]
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    args = [str(path), json.dumps(tokens), *map(str, out)]
    done = subprocess.run([sys.executable, "-c", LOAD, *args], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    np.testing.assert_array_equal(np.load(out[0]), want[0])
    np.testing.assert_array_equal(np.load(out[1]), want[1])
    assert not np.any(np.load(out[1])[1][:, 2:])  # the padded keys kept their 0 weight
