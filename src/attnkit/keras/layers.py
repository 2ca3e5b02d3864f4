"""Keras 3 attention layers, written with ``keras.ops`` only, so one model runs on the JAX,
TensorFlow and PyTorch backends and saves to ``.keras`` with no pickle (every layer is
registered as serializable under the package "attnkit").

Each equals the attnkit PyTorch layer of the same name (``attnkit.keras.from_torch`` and
``to_torch`` convert the weights), and keeps attnkit's conventions:

- masks are boolean, True = may attend. Keras masks (``Embedding(mask_zero=True)`` upstream,
  ``supports_masking``) mark the real steps: ``mask`` for a layer of one input, ``query_mask``,
  ``keys_mask`` / ``key_mask`` and ``values_mask`` / ``value_mask`` for layers of several.
  ``attention_mask`` is attnkit's ``mask=``: broadcast to the weights' shape by the usual rules
  (a 2-D one is (Tq, Tk));
- a query whose keys are all masked gets weights 0 and a context of 0, never NaN;
- ``return_weights=True`` returns ``(context, weights)``, eagerly and on symbolic tensors
  (a functional model can output both); the weights are those before dropout.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from ._ops import (
    check_window,
    combine,
    masked_softmax,
    padding_mask,
    structural_mask,
    zero_masked,
)

register = keras.saving.register_keras_serializable(package="attnkit")

_MULTIPLICATIVE = ("dot", "scaled_dot", "general", "concat")
_LOCAL_SCORES = ("dot", "scaled_dot", "general", "additive")
_MODES = ("monotonic", "predictive")


def _size(name: str, value: Any, none: bool = True) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return float(value)


def _vector_init(size: int) -> keras.initializers.Initializer:
    bound = 1.0 / math.sqrt(size)
    return keras.initializers.RandomUniform(-bound, bound)


def _single(query: Any) -> bool:
    return len(query.shape) == 2


@register
class AttentionGate(keras.layers.Layer):
    """The three-line "softmax gate": a = softmax(Dense(x)) over the features, output x * a.

    A feature gate, not a sequence attention: each step's features compete for weight. Padded
    steps (Keras mask False) give output 0.

    Shapes: x (B, T, D) or (B, D); ``mask`` (B, T). Returns the gated x, and with
    ``return_weights`` the gate (like x).

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import AttentionGate
        >>> tuple(AttentionGate()(np.ones((2, 5, 8), "float32")).shape)
        (2, 5, 8)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        d = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(d, d), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(d,), initializer="zeros")

    def call(self, inputs: Any, mask: Any = None, return_weights: bool = False) -> Any:
        weights = ops.softmax(ops.matmul(inputs, self.kernel) + self.bias, axis=-1)
        context = inputs * weights
        if mask is not None and len(inputs.shape) == 3:
            context = zero_masked(context, mask)
        return (context, weights) if return_weights else context

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask


@register
class FeedForwardAttention(keras.layers.Layer):
    """Feed-forward attention pooling, Raffel & Ellis 2015 (arXiv:1512.08756), eq. 1-3:

        e_t = tanh(W h_t + b),  a = softmax(e) over the real steps,  c = sum_t a_t h_t.

    With ``hidden_dim`` the score is a one-hidden-layer MLP, e_t = v^T tanh(W h_t + b). The
    masked softmax is exact (no epsilon), and a sequence with no real step pools to 0.

    Shapes: x (B, T, D), ``mask`` (B, T). Returns c (B, D), and with ``return_weights`` the
    weights (B, T). The output carries no mask (the time axis is gone).

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import FeedForwardAttention
        >>> tuple(FeedForwardAttention(hidden_dim=4)(np.ones((2, 5, 8), "float32")).shape)
        (2, 8)
    """

    def __init__(self, hidden_dim: int | None = None, use_bias: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        _size("hidden_dim", hidden_dim)
        self.hidden_dim, self.use_bias = hidden_dim, bool(use_bias)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        d, hidden = input_shape[-1], self.hidden_dim or 1
        self.kernel = self.add_weight(
            name="kernel", shape=(d, hidden), initializer="glorot_uniform"
        )
        self.bias = (
            self.add_weight(name="bias", shape=(hidden,), initializer="zeros")
            if self.use_bias
            else None
        )
        self.out_kernel = (
            self.add_weight(name="out_kernel", shape=(hidden, 1), initializer="glorot_uniform")
            if self.hidden_dim
            else None
        )

    def call(self, inputs: Any, mask: Any = None, return_weights: bool = False) -> Any:
        x = zero_masked(inputs, mask)  # a padded step reaches no output, even as 0 x NaN
        energy = ops.matmul(x, self.kernel)
        if self.bias is not None:
            energy = energy + self.bias
        energy = ops.tanh(energy)  # (B, T, 1) or (B, T, Hd)
        if self.out_kernel is not None:
            energy = ops.matmul(energy, self.out_kernel)
        weights = masked_softmax(ops.squeeze(energy, -1), mask)  # (B, T)
        context = ops.sum(ops.expand_dims(weights, -1) * x, axis=1)  # (B, D)
        return (context, weights) if return_weights else context

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "use_bias": self.use_bias}


class _QKV(keras.layers.Layer):
    """Attention of a query (B, Tq, Dq), or one query per example (B, Dq), over keys
    (B, Tk, Dk) and values (B, Tk, Dv) (default: the keys), with the subclass's score."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def score(self, query: Any, keys: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def call(
        self,
        query: Any,
        keys: Any,
        values: Any = None,
        query_mask: Any = None,
        keys_mask: Any = None,
        values_mask: Any = None,
        attention_mask: Any = None,
        return_weights: bool = False,
        **options: Any,
    ) -> Any:
        """Args:
            query: (B, Tq, Dq), or (B, Dq) for one query per example (Tq is then dropped).
            keys: (B, Tk, Dk); values: (B, Tk, Dv), default ``keys``.
            query_mask: the queries' Keras mask; it passes on to the output, unused here.
            keys_mask, values_mask: (B, Tk), True on real keys (Keras masks).
            attention_mask: True = may attend, broadcast to (B, Tq, Tk); (B, Tk) for one query.
            return_weights: also return the weights (B, Tq, Tk).
            options: the layer's own (LocalAttention: ``positions``).

        Returns:
            The context (B, Tq, Dv), and with ``return_weights`` the weights (rows sum to 1, or
            are 0 where every key is masked)."""
        del query_mask
        values = keys if values is None else values
        single = _single(query)
        q = ops.expand_dims(query, 1) if single else query  # (B, Tq, Dq)
        given = attention_mask
        if given is not None and single:  # one step: a (B, Tk) mask
            given = ops.expand_dims(ops.cast(given, "bool"), -2)
        keep = combine(keys_mask, values_mask)  # (B, Tk): the real keys
        weights = self._weights(q, keys, combine(given, padding_mask(keep)), **options)
        context = ops.matmul(weights, zero_masked(values, keep))  # (B, Tq, Dv)
        if single:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return (context, weights) if return_weights else context

    def _weights(self, query: Any, keys: Any, mask: Any) -> Any:
        return masked_softmax(self.score(query, keys), mask)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask  # the query's: one output a query


@register
class AdditiveAttention(_QKV):
    """Bahdanau attention, Bahdanau, Cho & Bengio 2014 (arXiv:1409.0473), eq. 6, with its
    weights W, U and v (``keras.layers.AdditiveAttention`` has none of them):

        e_ij = v^T tanh(W q_i + U k_j [+ b]),  a_i = softmax_j(e_ij),  c_i = sum_j a_ij v_j.

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import AdditiveAttention
        >>> attn = AdditiveAttention(hidden_dim=16)
        >>> q, k = np.ones((2, 32), "float32"), np.ones((2, 7, 24), "float32")
        >>> [tuple(t.shape) for t in attn(q, k, return_weights=True)]
        [(2, 24), (2, 7)]
    """

    def __init__(self, hidden_dim: int, use_bias: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _size("hidden_dim", hidden_dim, none=False)
        self.hidden_dim, self.use_bias = hidden_dim, bool(use_bias)

    def build(self, query_shape: tuple, keys_shape: tuple, values_shape: Any = None) -> None:
        h = self.hidden_dim
        self.w = self.add_weight(name="w", shape=(query_shape[-1], h), initializer="glorot_uniform")
        self.u = self.add_weight(name="u", shape=(keys_shape[-1], h), initializer="glorot_uniform")
        self.v = self.add_weight(name="v", shape=(h,), initializer=_vector_init(h))
        self.b = (
            self.add_weight(name="b", shape=(h,), initializer="zeros") if self.use_bias else None
        )

    def project_keys(self, keys: Any) -> Any:
        """U k (+ b): (B, Tk, Dk) -> (B, Tk, Hd), the half of the score a decoder that attends to
        the same keys at every step can compute once."""
        uk = ops.matmul(keys, self.u)
        return uk if self.b is None else uk + self.b

    def score(self, query: Any, keys: Any) -> Any:
        wq = ops.expand_dims(ops.matmul(query, self.w), -2)  # (B, Tq, 1, Hd)
        uk = ops.expand_dims(self.project_keys(keys), -3)  # (B, 1, Tk, Hd)
        return ops.matmul(ops.tanh(wq + uk), self.v)  # (B, Tq, Tk)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "use_bias": self.use_bias}


@register
class MultiplicativeAttention(_QKV):
    """Global attention of Luong, Pham & Manning 2015 (arXiv:1508.04025), section 3.1:

        dot:        e_ij = q_i . k_j
        scaled_dot: e_ij = q_i . k_j / sqrt(D)       (Vaswani et al. 2017)
        general:    e_ij = q_i^T W k_j
        concat:     e_ij = v^T tanh(W_a [q_i; k_j])  (``hidden_dim`` wide)

    "dot" and "scaled_dot" need Dq == Dk. "concat" is Bahdanau's score with W and U side by
    side in W_a: it converts to and from attnkit's PyTorch ``AdditiveAttention``.

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import MultiplicativeAttention
        >>> attn = MultiplicativeAttention("general")
        >>> tuple(attn(np.ones((2, 5, 8), "float32"), np.ones((2, 9, 6), "float32")).shape)
        (2, 5, 6)
    """

    def __init__(self, score: str = "dot", hidden_dim: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if score not in _MULTIPLICATIVE:
            raise ValueError(f"score must be one of {_MULTIPLICATIVE}, got {score!r}")
        _size("hidden_dim", hidden_dim, none=score != "concat")
        self.score_name, self.hidden_dim = score, hidden_dim

    def build(self, query_shape: tuple, keys_shape: tuple, values_shape: Any = None) -> None:
        dq, dk = query_shape[-1], keys_shape[-1]
        if self.score_name in ("dot", "scaled_dot") and dq != dk:
            raise ValueError(
                f'score="{self.score_name}" needs the query and keys of one size, got {dq} and '
                f'{dk}; use score="general" to compare vectors of different sizes'
            )
        if self.score_name == "general":
            self.w = self.add_weight(name="w", shape=(dq, dk), initializer="glorot_uniform")
        if self.score_name == "concat":
            h = self.hidden_dim
            self.w_a = self.add_weight(name="w_a", shape=(dq + dk, h), initializer="glorot_uniform")
            self.v = self.add_weight(name="v", shape=(h,), initializer=_vector_init(h))
        self.query_dim = dq

    def score(self, query: Any, keys: Any) -> Any:
        name = self.score_name
        if name == "concat":  # W_a [q; k] = W_a[:Dq] q + W_a[Dq:] k, without the concatenation
            wq = ops.expand_dims(ops.matmul(query, self.w_a[: self.query_dim]), -2)
            uk = ops.expand_dims(ops.matmul(keys, self.w_a[self.query_dim :]), -3)
            return ops.matmul(ops.tanh(wq + uk), self.v)
        if name == "general":
            query = ops.matmul(query, self.w)
        scores = ops.matmul(query, ops.swapaxes(keys, -1, -2))  # (B, Tq, Tk)
        if name == "scaled_dot":
            scores = scores / ops.sqrt(ops.cast(ops.shape(keys)[-1], scores.dtype))
        return scores

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "score": self.score_name, "hidden_dim": self.hidden_dim}


@register
class LocalAttention(_QKV):
    """Local attention of Luong, Pham & Manning 2015 (arXiv:1508.04025), section 3.2: query t
    attends to the keys s with |s - p_t| <= ``width``.

    - ``mode="monotonic"`` (local-m): p_t = t (``positions=`` overrides it, e.g. the step
      number while decoding one query at a time);
    - ``mode="predictive"`` (local-p): p_t = (S - 1) sigmoid(v_p^T tanh(W_p q_t)), S the keys
      the query may see, and the in-window softmax times a Gaussian of sigma = width / 2
      (eq. 10), not renormalised, as in the paper (rows sum to at most 1).

    ``score`` is the inner score: "dot", "scaled_dot", "general" or "additive" (Bahdanau's,
    ``hidden_dim`` wide, with ``use_bias``); ``predictor_dim`` is the width of local-p's
    predictor (default: the query's size).

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import LocalAttention
        >>> local = LocalAttention(2, score="general")
        >>> tuple(local(np.ones((3, 6, 16), "float32"), np.ones((3, 8, 16), "float32")).shape)
        (3, 6, 16)
    """

    def __init__(
        self,
        width: int,
        mode: str = "monotonic",
        score: str = "general",
        hidden_dim: int | None = None,
        predictor_dim: int | None = None,
        use_bias: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < (mode == "predictive"):
            raise ValueError(f"width must be an int >= 1 (>= 0 for monotonic), got {width!r}")
        if score not in _LOCAL_SCORES:
            raise ValueError(f"score must be one of {_LOCAL_SCORES}, got {score!r}")
        _size("predictor_dim", predictor_dim)
        self.width, self.mode, self.score_name = width, mode, score
        self.hidden_dim, self.predictor_dim, self.use_bias = hidden_dim, predictor_dim, use_bias
        if score == "additive":
            self.inner: _QKV = AdditiveAttention(hidden_dim, use_bias=use_bias, name="inner")
        else:
            self.inner = MultiplicativeAttention(score, name="inner")

    def build(self, query_shape: tuple, keys_shape: tuple, values_shape: Any = None) -> None:
        self.inner.build(query_shape, keys_shape)
        if self.mode == "predictive":
            dq = query_shape[-1]
            hp = self.predictor_dim or dq
            self.p_w = self.add_weight(name="p_w", shape=(dq, hp), initializer="glorot_uniform")
            self.p_v = self.add_weight(name="p_v", shape=(hp, 1), initializer="glorot_uniform")

    def score(self, query: Any, keys: Any) -> Any:
        return self.inner.score(query, keys)

    def _centres(self, query: Any, mask: Any, tk: Any, positions: Any = None) -> Any:
        """p_t (B, Tq) for the queries (B, Tq, Dq)."""
        b, tq = ops.shape(query)[0], ops.shape(query)[1]
        if self.mode == "monotonic":
            pos = ops.arange(tq) if positions is None else ops.convert_to_tensor(positions)
            return ops.broadcast_to(ops.cast(pos, query.dtype), (b, tq))
        if mask is None:
            seen = ops.full((b, tq), tk, dtype=query.dtype)
        else:  # S = the keys this query may see
            full = ops.logical_and(mask, ops.ones((b, tq, tk), dtype="bool"))
            seen = ops.sum(ops.cast(full, query.dtype), axis=-1)
        hidden = ops.tanh(ops.matmul(query, self.p_w))  # (B, Tq, Hp)
        gate = ops.sigmoid(ops.squeeze(ops.matmul(hidden, self.p_v), -1))  # (B, Tq)
        return ops.maximum(seen - 1, 0) * gate

    def _weights(self, query: Any, keys: Any, mask: Any, positions: Any = None) -> Any:
        tk = ops.shape(keys)[1]
        centre = ops.expand_dims(self._centres(query, mask, tk, positions), -1)  # (B, Tq, 1)
        dist = ops.cast(ops.arange(tk), query.dtype) - centre  # (B, Tq, Tk)
        full = combine(mask, ops.abs(dist) <= self.width)
        align = masked_softmax(self.score(query, keys), full)
        if self.mode == "monotonic":
            return align
        sigma = self.width / 2
        return align * ops.exp(-(dist**2) / (2 * sigma**2))  # Luong eq. 10

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "width": self.width,
            "mode": self.mode,
            "score": self.score_name,
            "hidden_dim": self.hidden_dim,
            "predictor_dim": self.predictor_dim,
            "use_bias": self.use_bias,
        }


@register
class SeqSelfAttention(keras.layers.Layer):
    """Sequence self-attention, the interface of keras-self-attention's ``SeqSelfAttention``
    on Keras 3: every step attends to the steps of the same sequence,

        additive:        e_tt' = v^T tanh(W_t x_t + W_x x_t' + b_h)
        multiplicative:  e_tt' = x_t^T W_a x_t'
        c_t = sum_t' softmax_t'(e_tt') x_t'

    over the inputs themselves (no value projection). Its argument names carry over:
    ``units`` (the additive score's width), ``attention_width`` (keys from
    t - attention_width // 2 on, attention_width of them; with ``history_only`` the last
    attention_width up to t), ``attention_type``, ``history_only`` (causal),
    ``use_additive_bias`` (b_h), ``return_attention``. ``use_attention_bias`` is gone: a constant
    added to every score of a row does not change its softmax. attnkit's ``window`` (left,
    right) may be given instead of ``attention_width``.

    Shapes: x (B, T, D); ``mask`` (B, T) (Keras's); ``attention_mask`` broadcast to (B, T, T).
    Returns the context (B, T, D), and with ``return_attention`` (or ``return_weights=True``
    in the call) also the weights (B, T, T).

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import SeqSelfAttention
        >>> tuple(SeqSelfAttention(units=8, attention_width=3)(np.ones((2, 6, 4), "float32")).shape)
        (2, 6, 4)
    """

    ATTENTION_TYPE_ADD = "additive"
    ATTENTION_TYPE_MUL = "multiplicative"

    def __init__(
        self,
        units: int = 32,
        attention_width: int | None = None,
        attention_type: str = "additive",
        return_attention: bool = False,
        history_only: bool = False,
        use_additive_bias: bool = True,
        window: Any = None,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _size("units", units, none=False)
        _size("attention_width", attention_width)
        if attention_type not in (self.ATTENTION_TYPE_ADD, self.ATTENTION_TYPE_MUL):
            raise ValueError(
                f"attention_type must be 'additive' or 'multiplicative', got {attention_type!r}"
            )
        if attention_width is not None and window is not None:
            raise ValueError("give attention_width or window, not both")
        self.units, self.attention_width, self.attention_type = (
            units,
            attention_width,
            attention_type,
        )
        self.return_attention, self.history_only = bool(return_attention), bool(history_only)
        self.use_additive_bias = bool(use_additive_bias)
        self.window = check_window(window)
        self.dropout, self.seed = _rate(dropout), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    @property
    def band(self) -> tuple[int | None, int | None] | None:
        """The (left, right) keys a step may see, from ``attention_width`` or ``window``."""
        w = self.attention_width
        if w is None:
            return self.window
        if self.history_only:
            return (w - 1, 0)
        return (w // 2, w - w // 2 - 1)

    def build(self, input_shape: tuple) -> None:
        d = input_shape[-1]
        if self.attention_type == self.ATTENTION_TYPE_ADD:
            u = self.units
            self.wt = self.add_weight(name="Wt", shape=(d, u), initializer="glorot_uniform")
            self.wx = self.add_weight(name="Wx", shape=(d, u), initializer="glorot_uniform")
            self.bh = (
                self.add_weight(name="bh", shape=(u,), initializer="zeros")
                if self.use_additive_bias
                else None
            )
            self.wa = self.add_weight(name="Wa", shape=(u,), initializer=_vector_init(u))
        else:
            self.wa = self.add_weight(name="Wa", shape=(d, d), initializer="glorot_uniform")

    def scores(self, x: Any) -> Any:
        """e (B, T, T) of the layer's score."""
        if self.attention_type == self.ATTENTION_TYPE_MUL:
            return ops.matmul(ops.matmul(x, self.wa), ops.swapaxes(x, -1, -2))
        q = ops.expand_dims(ops.matmul(x, self.wt), 2)  # (B, T, 1, U)
        k = ops.matmul(x, self.wx)
        if self.bh is not None:
            k = k + self.bh
        return ops.matmul(ops.tanh(q + ops.expand_dims(k, 1)), self.wa)  # (B, T, T)

    def call(
        self,
        inputs: Any,
        mask: Any = None,
        attention_mask: Any = None,
        return_weights: bool | None = None,
        training: bool | None = None,
    ) -> Any:
        t = ops.shape(inputs)[1]
        full = combine(
            attention_mask,
            padding_mask(mask),
            structural_mask(t, t, self.history_only, self.band),
        )
        weights = masked_softmax(self.scores(inputs), full)
        used = weights
        if training and self.dropout > 0:
            used = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        context = ops.matmul(used, zero_masked(inputs, mask))
        give = self.return_attention if return_weights is None else return_weights
        return (context, weights) if give else context

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "attention_width": self.attention_width,
            "attention_type": self.attention_type,
            "return_attention": self.return_attention,
            "history_only": self.history_only,
            "use_additive_bias": self.use_additive_bias,
            "window": None if self.window is None else list(self.window),
            "dropout": self.dropout,
            "seed": self.seed,
        }


@register
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention, Vaswani et al. 2017 (arXiv:1706.03762), section 3.2.2, self or
    cross, with grouped-query attention (``kv_heads`` < ``num_heads``; Ainslie et al. 2023):

        head_h = softmax(Q W_h^Q (K W_h^K)^T / sqrt(D) + M) V W_h^V,  out = [heads] W^O.

    Shapes: query (B, Tq, E); key (B, Tk, kdim) and value (B, Tk, vdim), both default to the
    query (self-attention). ``embed_dim`` defaults to E. ``causal``: query i sees keys
    j <= i + (Tk - Tq) (bottom-right aligned), also with dropout on and weights returned.
    Keras masks: ``mask`` / ``query_mask`` (the query's; for self-attention they mark the real
    keys too), ``key_mask``, ``value_mask`` (B, Tk). Returns the output (B, Tq, E), and with
    ``return_weights`` the weights (B, H, Tq, Tk).

    Example:
        >>> import numpy as np
        >>> from attnkit.keras import MultiHeadAttention
        >>> mha = MultiHeadAttention(num_heads=4, kv_heads=2)
        >>> out, w = mha(np.ones((2, 5, 16), "float32"), causal=True, return_weights=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 5, 16), (2, 4, 5, 5))
    """

    def __init__(
        self,
        num_heads: int,
        kv_heads: int | None = None,
        embed_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _size("num_heads", num_heads, none=False)
        kv_heads = num_heads if kv_heads is None else kv_heads
        _size("kv_heads", kv_heads, none=False)
        _size("embed_dim", embed_dim)
        if num_heads % kv_heads:
            raise ValueError(f"kv_heads ({kv_heads}) must divide num_heads ({num_heads})")
        self.num_heads, self.kv_heads, self.embed_dim = num_heads, kv_heads, embed_dim
        self.dropout, self.use_bias, self.seed = _rate(dropout), bool(use_bias), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, query_shape: tuple, key_shape: Any = None, value_shape: Any = None) -> None:
        e = self.embed_dim or query_shape[-1]
        if e % self.num_heads:
            raise ValueError(f"embed_dim ({e}) must be divisible by num_heads ({self.num_heads})")
        self.embed_dim, self.head_dim = e, e // self.num_heads
        kdim = (key_shape or value_shape or query_shape)[-1]
        vdim = (value_shape or key_shape or query_shape)[-1]
        kv = self.kv_heads * self.head_dim
        for name, d_in, d_out in (
            ("query", query_shape[-1], e),
            ("key", kdim, kv),
            ("value", vdim, kv),
            ("output", e, e),
        ):
            kernel = self.add_weight(
                name=f"{name}_kernel", shape=(d_in, d_out), initializer="glorot_uniform"
            )
            bias = None
            if self.use_bias:
                bias = self.add_weight(name=f"{name}_bias", shape=(d_out,), initializer="zeros")
            setattr(self, f"{name}_kernel", kernel)
            setattr(self, f"{name}_bias", bias)

    def _project(self, x: Any, name: str, heads: int) -> Any:
        """x (B, T, D) -> (B, heads, T, head_dim)."""
        y = ops.matmul(x, getattr(self, f"{name}_kernel"))
        bias = getattr(self, f"{name}_bias")
        if bias is not None:
            y = y + bias
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(y, (b, t, heads, self.head_dim)), (0, 2, 1, 3))

    def call(
        self,
        query: Any,
        key: Any = None,
        value: Any = None,
        mask: Any = None,
        query_mask: Any = None,
        key_mask: Any = None,
        value_mask: Any = None,
        attention_mask: Any = None,
        causal: bool = False,
        return_weights: bool = False,
        training: bool | None = None,
    ) -> Any:
        query_mask = query_mask if query_mask is not None else mask
        self_attention = key is None and value is None
        if self_attention:
            key_mask = query_mask
        key = value if key is None else key
        key = query if key is None else key
        value = key if value is None else value
        q = self._project(query, "query", self.num_heads)  # (B, H, Tq, D)
        k = self._project(key, "key", self.kv_heads)  # (B, Hkv, Tk, D)
        v = self._project(value, "value", self.kv_heads)
        if self.kv_heads != self.num_heads:  # query head h reads key/value head h // group
            group = self.num_heads // self.kv_heads
            k, v = ops.repeat(k, group, axis=1), ops.repeat(v, group, axis=1)
        tq, tk = ops.shape(query)[1], ops.shape(key)[1]
        keep = combine(key_mask, value_mask)  # (B, Tk)
        given = None if attention_mask is None else ops.cast(attention_mask, "bool")
        if given is not None and len(given.shape) == 3:  # (B, Tq, Tk): one for every head
            given = ops.expand_dims(given, 1)
        full = combine(
            given,
            None if keep is None else keep[:, None, None, :],
            structural_mask(tq, tk, causal, None),
        )
        scale = 1.0 / math.sqrt(self.head_dim)
        scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * scale  # (B, H, Tq, Tk)
        weights = masked_softmax(scores, full)
        used = weights
        if training and self.dropout > 0:
            used = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        if keep is not None:  # padding reaches no output, even as 0 x NaN
            v = ops.where(keep[:, None, :, None], v, ops.zeros_like(v))
        heads = ops.matmul(used, v)  # (B, H, Tq, D)
        b = ops.shape(query)[0]
        merged = ops.reshape(ops.transpose(heads, (0, 2, 1, 3)), (b, tq, self.embed_dim))
        out = ops.matmul(merged, self.output_kernel)
        if self.output_bias is not None:
            out = out + self.output_bias
        return (out, weights) if return_weights else out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask  # the query's: one output a query

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "kv_heads": self.kv_heads,
            "embed_dim": self.embed_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "seed": self.seed,
        }
