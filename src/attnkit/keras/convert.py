"""Weights both ways between attnkit's PyTorch layers and its Keras layers, so a model trained
in one framework runs in the other: ``from_torch(torch_layer)`` gives a built Keras layer with
the same weights, ``to_torch(keras_layer)`` a PyTorch layer. A torch ``Linear`` keeps its
weight as (out, in), a Keras kernel as (in, out): the one rule the table below applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from keras import ops

from . import layers as kl

# per Keras layer type: (Keras weight attribute, torch parameter path, transposed?)
Table = list[tuple[str, str, bool]]


def _numpy_torch(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


def _torch_param(module: Any, path: str) -> Any:
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


def _copy_in(layer: Any, module: Any, table: Table) -> None:
    """Torch parameters into the Keras layer's variables."""
    for attr, path, transpose in table:
        var = _keras_var(layer, attr)
        value = _numpy_torch(_torch_param(module, path))
        var.assign((value.T if transpose else value).astype(_dtype(var)))


def _copy_out(layer: Any, module: Any, table: Table) -> None:
    """The Keras layer's variables into the torch parameters."""
    import torch

    with torch.no_grad():
        for attr, path, transpose in table:
            value = np.asarray(ops.convert_to_numpy(_keras_var(layer, attr)))
            p = _torch_param(module, path)
            p.copy_(torch.from_numpy(np.ascontiguousarray(value.T if transpose else value)))


def _keras_var(layer: Any, attr: str) -> Any:
    for part in attr.split("."):
        layer = getattr(layer, part)
    return layer


def _dtype(var: Any) -> str:
    return str(var.dtype).replace("torch.", "")


def _torch_dtype(layer: Any) -> Any:
    import torch

    return {"float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(
        layer.dtype_policy.variable_dtype, torch.float32
    )


def _keras_dtype(module: Any) -> str:
    p = next(module.parameters(), None)
    return "float32" if p is None else str(p.dtype).replace("torch.", "")


_GATE: Table = [("kernel", "proj.weight", True), ("bias", "proj.bias", False)]
_PREDICTOR: Table = [("p_w", "predictor.0.weight", True), ("p_v", "predictor.2.weight", True)]


def _pooling_table(hidden: bool, bias: bool) -> Table:
    t = [("kernel", "proj.weight", True)]
    if bias:
        t.append(("bias", "proj.bias", False))
    if hidden:
        t.append(("out_kernel", "out.weight", True))
    return t


def _additive_table(bias: bool) -> Table:
    t = [("w", "query_proj.weight", True), ("u", "key_proj.weight", True), ("v", "v", False)]
    return t + ([("b", "bias", False)] if bias else [])


def _mha_table(bias: bool) -> Table:
    names = (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"), ("output", "out_proj"))
    t = [(f"{k}_kernel", f"{p}.weight", True) for k, p in names]
    return t + ([(f"{k}_bias", f"{p}.bias", False) for k, p in names] if bias else [])


def _self_attention_table(additive: bool) -> Table:
    if not additive:
        return [("wa", "weight", False)]
    return [
        ("wt", "w_t.weight", True),
        ("wx", "w_x.weight", True),
        ("bh", "w_x.bias", False),
        ("wa", "v", False),
    ]


def _local_table(module: Any) -> Table:
    """A torch LocalAttention's table: its inner score's (Keras attributes under ``inner.``)
    and local-p's predictor."""
    from ..layers import AdditiveAttention

    inner = module.inner
    if isinstance(inner, AdditiveAttention):
        table = _additive_table(inner.bias is not None)
    else:
        table = [("w", "weight", False)] if inner.weight is not None else []
    table = [(f"inner.{a}", f"inner.{p}", t) for a, p, t in table]
    return table + (_PREDICTOR if module.predictor is not None else [])


def from_torch(module: Any) -> Any:
    """A built Keras layer (``attnkit.keras``) with the weights of attnkit PyTorch layer
    ``module``: AttentionGate, FeedForwardAttention, SelfAttention (-> SeqSelfAttention),
    AdditiveAttention, MultiplicativeAttention, LocalAttention or MultiHeadAttention.

    Example:
        >>> import numpy as np, torch, attnkit, keras
        >>> torch_layer = attnkit.AdditiveAttention(8, 6, 5)
        >>> layer = from_torch(torch_layer)
        >>> rng = np.random.default_rng(0)
        >>> q, k = rng.random((2, 3, 8), "float32"), rng.random((2, 4, 6), "float32")
        >>> want = torch_layer(torch.from_numpy(q), torch.from_numpy(k)).context.detach().numpy()
        >>> bool(np.allclose(keras.ops.convert_to_numpy(layer(q, k)), want, atol=1e-5))
        True
    """
    from .. import layers as tl

    kind = type(module).__name__
    convert = _FROM.get(kind)
    if convert is None or not isinstance(module, getattr(tl, kind)):
        raise ValueError(f"from_torch converts attnkit's {', '.join(sorted(_FROM))}; got {kind}")
    return convert(module, _keras_dtype(module))


def _from_gate(m: Any, dtype: str) -> Any:
    layer = kl.AttentionGate(dtype=dtype)
    layer.build((None, None, m.dim))
    _copy_in(layer, m, _GATE)
    return layer


def _from_pooling(m: Any, dtype: str) -> Any:
    bias = m.proj.bias is not None
    layer = kl.FeedForwardAttention(m.hidden_dim, use_bias=bias, dtype=dtype)
    layer.build((None, None, m.dim))
    _copy_in(layer, m, _pooling_table(m.hidden_dim is not None, bias))
    return layer


def _from_self(m: Any, dtype: str) -> Any:
    additive = m.score_name == "additive"
    units = m.v.shape[0] if additive else 32
    layer = kl.SeqSelfAttention(
        units=units,
        attention_type=m.score_name,
        history_only=m.causal,
        window=m.window,
        dropout=m.dropout,
        return_attention=False,
        dtype=dtype,
    )
    layer.build((None, None, m.dim))
    _copy_in(layer, m, _self_attention_table(additive))
    return layer


def _from_additive(m: Any, dtype: str) -> Any:
    bias = m.bias is not None
    layer = kl.AdditiveAttention(m.hidden_dim, use_bias=bias, dtype=dtype)
    layer.build((None, None, m.query_dim), (None, None, m.key_dim))
    _copy_in(layer, m, _additive_table(bias))
    return layer


def _from_multiplicative(m: Any, dtype: str) -> Any:
    layer = kl.MultiplicativeAttention(m.score_name, dtype=dtype)
    layer.build((None, None, m.query_dim), (None, None, m.key_dim))
    if m.weight is not None:
        _copy_in(layer, m, [("w", "weight", False)])
    return layer


def _from_local(m: Any, dtype: str) -> Any:
    from ..layers import AdditiveAttention

    additive = isinstance(m.inner, AdditiveAttention)
    predictor_dim = None if m.predictor is None else m.predictor[0].out_features
    layer = kl.LocalAttention(
        m.width,
        mode=m.mode,
        score="additive" if additive else m.inner.score_name,
        hidden_dim=m.inner.hidden_dim if additive else None,
        predictor_dim=predictor_dim,
        use_bias=additive and m.inner.bias is not None,
        dtype=dtype,
    )
    layer.build((None, None, m.query_dim), (None, None, m.key_dim or m.query_dim))
    _copy_in(layer, m, _local_table(m))
    return layer


def _from_mha(m: Any, dtype: str) -> Any:
    if m.rotary is not None:
        raise ValueError("from_torch: rotary positions have no Keras layer here yet")
    bias = m.q_proj.bias is not None
    layer = kl.MultiHeadAttention(
        m.num_heads,
        kv_heads=m.kv_heads,
        embed_dim=m.embed_dim,
        dropout=m.dropout,
        use_bias=bias,
        dtype=dtype,
    )
    layer.build((None, None, m.embed_dim), (None, None, m.kdim), (None, None, m.vdim))
    _copy_in(layer, m, _mha_table(bias))
    return layer


_FROM: dict[str, Callable[[Any, str], Any]] = {
    "AttentionGate": _from_gate,
    "FeedForwardAttention": _from_pooling,
    "SelfAttention": _from_self,
    "AdditiveAttention": _from_additive,
    "MultiplicativeAttention": _from_multiplicative,
    "LocalAttention": _from_local,
    "MultiHeadAttention": _from_mha,
}


def to_torch(layer: Any) -> Any:
    """The attnkit PyTorch layer with the weights of built Keras layer ``layer`` (call it once,
    or build it, first). MultiplicativeAttention("concat") becomes an AdditiveAttention (the
    same score, W and U side by side); SeqSelfAttention a SelfAttention."""
    kind = type(layer).__name__
    convert = _TO.get(kind)
    if convert is None or not isinstance(layer, getattr(kl, kind)):
        raise ValueError(f"to_torch converts attnkit.keras's {', '.join(sorted(_TO))}; got {kind}")
    if not layer.built:
        raise ValueError(f"to_torch: build the {kind} (or call it once) before converting it")
    module = convert(layer)
    return module.to(_torch_dtype(layer))


def _dim(var: Any, axis: int = 0) -> int:
    return int(var.shape[axis])


def _to_gate(layer: Any) -> Any:
    from ..layers import AttentionGate

    m = AttentionGate(_dim(layer.kernel))
    _copy_out(layer, m, _GATE)
    return m


def _to_pooling(layer: Any) -> Any:
    from ..layers import FeedForwardAttention

    m = FeedForwardAttention(_dim(layer.kernel), layer.hidden_dim, bias=layer.use_bias)
    _copy_out(layer, m, _pooling_table(layer.hidden_dim is not None, layer.use_bias))
    return m


def _to_self(layer: Any) -> Any:
    import torch

    from ..layers import SelfAttention

    additive = layer.attention_type == "additive"
    d = _dim(layer.wt if additive else layer.wa)
    m = SelfAttention(
        d,
        score=layer.attention_type,
        window=layer.band,
        causal=layer.history_only,
        hidden_dim=layer.units if additive else None,
        dropout=layer.dropout,
    )
    table = _self_attention_table(additive)
    if additive and layer.bh is None:  # torch's W_x always has its bias: 0 here
        table = [t for t in table if t[0] != "bh"]
        with torch.no_grad():
            m.w_x.bias.zero_()
    _copy_out(layer, m, table)
    return m


def _to_additive(layer: Any) -> Any:
    from ..layers import AdditiveAttention

    m = AdditiveAttention(_dim(layer.w), _dim(layer.u), layer.hidden_dim, bias=layer.use_bias)
    _copy_out(layer, m, _additive_table(layer.use_bias))
    return m


def _to_multiplicative(layer: Any) -> Any:
    import torch

    from ..layers import AdditiveAttention, MultiplicativeAttention

    if layer.score_name == "concat":
        dq = layer.query_dim
        w_a = np.asarray(ops.convert_to_numpy(layer.w_a))
        m = AdditiveAttention(dq, w_a.shape[0] - dq, layer.hidden_dim)
        with torch.no_grad():
            m.query_proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(w_a[:dq].T)))
            m.key_proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(w_a[dq:].T)))
        _copy_out(layer, m, [("v", "v", False)])
        return m
    if layer.score_name == "general":
        m = MultiplicativeAttention(_dim(layer.w), _dim(layer.w, 1), score="general")
        _copy_out(layer, m, [("w", "weight", False)])
        return m
    return MultiplicativeAttention(layer.query_dim, score=layer.score_name)


def _to_local(layer: Any) -> Any:
    from ..layers import LocalAttention

    inner = _TO[type(layer.inner).__name__](layer.inner)  # with the inner score's weights
    hidden = None if layer.mode != "predictive" else _dim(layer.p_w, 1)
    m = LocalAttention(inner, layer.width, mode=layer.mode, hidden_dim=hidden)
    if m.predictor is not None:
        _copy_out(layer, m, _PREDICTOR)
    return m


def _to_mha(layer: Any) -> Any:
    from ..layers import MultiHeadAttention

    m = MultiHeadAttention(
        layer.embed_dim,
        layer.num_heads,
        layer.kv_heads,
        kdim=_dim(layer.key_kernel),
        vdim=_dim(layer.value_kernel),
        dropout=layer.dropout,
        bias=layer.use_bias,
    )
    _copy_out(layer, m, _mha_table(layer.use_bias))
    return m


_TO: dict[str, Callable[[Any], Any]] = {
    "AttentionGate": _to_gate,
    "FeedForwardAttention": _to_pooling,
    "SeqSelfAttention": _to_self,
    "AdditiveAttention": _to_additive,
    "MultiplicativeAttention": _to_multiplicative,
    "LocalAttention": _to_local,
    "MultiHeadAttention": _to_mha,
}
