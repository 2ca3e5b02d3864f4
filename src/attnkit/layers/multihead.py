"""Multi-head attention (Vaswani et al. 2017) with GQA/MQA and a KV cache."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._ext.tracing import tracing
from ..functional.attend import attend_heads
from ..functional.output import AttentionOutput
from .base import (
    check_dtype,
    check_sizes,
    layer_mask,
    merge_heads,
    multihead_inputs,
    split_heads,
    weights_flag,
)


@dataclass
class KVCache:
    """Projected keys and values of the tokens seen so far, (B, kv_heads, T, D) each.

    Pass the same object to successive ``MultiHeadAttention(..., cache=cache)`` calls; each call
    appends its new keys/values. With ``causal=True`` the bottom-right alignment makes the new
    queries see every cached token and the new ones up to themselves.

    A ``static`` cache is for keys that do not grow, such as a decoder's cross-attention to the
    encoder's output: the first call projects and stores them, later calls reuse them and may
    pass no key at all.

    ``capacity`` (tokens) reserves room up front (doubled when outgrown), so an append writes
    only the new tokens instead of copying everything seen so far; ``key`` and ``value`` are
    then views of that room. Meant for one owner appending under ``torch.no_grad`` /
    ``inference_mode`` (a generation loop): copies of such a cache share its room. Without it
    every append concatenates, and a shallow copy may append independently of the original.

    ``keys_finite`` says what is known of the keys it holds: True when every append was
    checked free of NaN and inf, False when one was not, None when an append came unchecked.
    It lets attention skip re-reading the whole cache for that check at every step.
    """

    key: Tensor | None = None
    value: Tensor | None = None
    static: bool = False
    capacity: int | None = None
    keys_finite: bool | None = True
    _room: tuple[Tensor, Tensor] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = self.capacity
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 1):
            raise ValueError(f"capacity must be None or an int >= 1 (tokens), got {c!r}")

    def __len__(self) -> int:
        return self.length

    @property
    def length(self) -> int:
        """The tokens it holds: ``len(cache)``, but while torch traces a graph the symbolic
        size itself (``len()`` would fix it at the example's)."""
        return 0 if self.key is None else self.key.shape[-2]

    def append(
        self, key: Tensor, value: Tensor, finite: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """Add (B, kv_heads, T_new, D) keys/values; return all of them. ``finite``: whether
        the new keys are known free of NaN and inf (None: not checked)."""
        if self.key is not None and self.key.shape[:2] != key.shape[:2]:
            raise ValueError(
                f"cache holds batch/heads {tuple(self.key.shape[:2])}, "
                f"new keys have {tuple(key.shape[:2])}"
            )
        self.keys_finite = all_known(self.keys_finite, finite)
        if self.capacity is None:
            if self.key is not None and self.value is not None:
                key = torch.cat([self.key, key], dim=-2)
                value = torch.cat([self.value, value], dim=-2)
            self.key, self.value = key, value
            return key, value
        n = 0 if self.key is None else self.key.shape[-2]
        end = n + key.shape[-2]
        room = self._room
        if room is None or room[0].shape[-2] < end or room[0].dtype != key.dtype:
            size = max(end, self.capacity, 2 * (0 if room is None else room[0].shape[-2]))
            shape = (*key.shape[:-2], size, key.shape[-1])
            room = (key.new_empty(shape), value.new_empty((*shape[:-1], value.shape[-1])))
            if n and self.key is not None and self.value is not None:
                room[0][..., :n, :], room[1][..., :n, :] = self.key, self.value
            self._room = room
        room_k, room_v = room
        room_k[..., n:end, :] = key
        room_v[..., n:end, :] = value
        self.key, self.value = room_k[..., :end, :], room_v[..., :end, :]
        return self.key, self.value


def all_known(a: bool | None, b: bool | None) -> bool | None:
    """AND of two facts that may be unknown (None): False if either is False, else None if
    either is unknown, else True."""
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


class MultiHeadAttention(nn.Module):
    """Multi-head attention, Vaswani et al. 2017 (arXiv:1706.03762), section 3.2.2:

        MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O,
        head_h = softmax(Q W_h^Q (K W_h^K)^T / sqrt(D) + M) V W_h^V.

    ``kv_heads`` < ``num_heads`` gives grouped-query attention (Ainslie et al. 2023; 1 = MQA):
    query head h uses key/value head h // (num_heads // kv_heads).

    Shapes: query (B, Tq, E); key (B, Tk, kdim) and value (B, Tk, vdim), both default to query.
    ``mask`` is bool (True = may attend), broadcastable to (B, H, Tq, Tk) by torch's rules, so a
    2-D mask is (Tq, Tk); ``key_padding_mask`` (B, Tk) or ``lengths`` (B,) mark the real keys
    (with a cache, Tk counts the cached keys too). Returns AttentionOutput(context (B, Tq, E),
    weights (B, H, Tq, Tk) when ``return_weights``, else None).

    Example:
        >>> mha = MultiHeadAttention(64, num_heads=8, kv_heads=2)
        >>> x = torch.randn(2, 10, 64)
        >>> mha(x, causal=True, return_weights=True).weights.shape
        torch.Size([2, 8, 10, 10])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        kv_heads: int | None = None,
        kdim: int | None = None,
        vdim: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: nn.Module | None = None,
    ) -> None:
        super().__init__()
        kv_heads = num_heads if kv_heads is None else kv_heads
        check_sizes(
            "MultiHeadAttention",
            embed_dim=embed_dim,
            num_heads=num_heads,
            kv_heads=kv_heads,
            kdim=kdim,
            vdim=vdim,
        )
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if kv_heads < 1 or num_heads % kv_heads:
            raise ValueError(f"kv_heads ({kv_heads}) must divide num_heads ({num_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.kv_heads = embed_dim, num_heads, kv_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.rotary = rotary  # e.g. RotaryEmbedding(head_dim): rotates q and k by position
        self._packed: tuple[Tensor, Tensor | None] | None = None  # see packed_projections

    def _self_projection(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """(q, k, v, q and k) as (B, heads, T, D) views of one product of ``x`` with the
        packed in-projection weights; None outside :func:`packed_projections` or where
        gradients are on (the stacked copy carries none)."""
        if self._packed is None or torch.is_grad_enabled():
            return None
        b, t, _ = x.shape
        h, both = self.num_heads, self.num_heads + self.kv_heads
        heads = torch.nn.functional.linear(x, *self._packed)
        heads = heads.view(b, t, both + self.kv_heads, self.head_dim).transpose(1, 2)
        return heads[:, :h], heads[:, h:both], heads[:, both:], heads[:, :both]

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        lengths: Tensor | None = None,
        causal: bool = False,
        return_weights: bool = False,
        cache: KVCache | None = None,
        need_weights: bool | None = None,
        weights_heads: Sequence[int] | Tensor | None = None,
        weights_rows: Sequence[int] | Tensor | None = None,
    ) -> AttentionOutput:
        """Multi-head attention (Vaswani et al. 2017, section 3.2.2), self or cross.

        Args:
            query: (B, Tq, E).
            key, value: (B, Tk, kdim) and (B, Tk, vdim); default ``query`` (self-attention).
            mask: True = may attend, broadcast to (B, H, Tq, Tk) (a 2-D mask is (Tq, Tk)).
            key_padding_mask: (B, Tk), True on real keys; lengths: (B,), its shortcut.
            causal: query i sees keys j <= i + (Tk - Tq) (bottom-right aligned, as with a cache).
            return_weights: also return the weights (default False).
            cache: a KVCache that the new keys and values are appended to (incremental decoding).
            need_weights: deprecated alias of ``return_weights``.
            weights_heads, weights_rows: return the weights of those heads and query rows only,
                (B, H', Tq', Tk), without a full (Tq, Tk) matrix per head on any kernel.

        Returns:
            AttentionOutput: context (B, Tq, E) and weights (B, H, Tq, Tk) or None."""
        return_weights = weights_flag(return_weights, need_weights, "MultiHeadAttention")
        if cache is not None and cache.static and self.rotary is not None:
            raise ValueError("rotary positions are for self-attention, not a static cache")
        reuse = cache is not None and cache.static and cache.key is not None
        if reuse:  # a filled static cache: its keys and values, whatever key/value say
            key = value = None
            query, _, _ = multihead_inputs(query, None, None, (self.embed_dim,) * 3)
        else:
            dims = (self.embed_dim, self.kdim, self.vdim)
            query, key, value = multihead_inputs(query, key, value, dims)
        check_dtype(self, query=query, key=key, value=value)
        b, tq = query.shape[:2]
        past = cache.length if cache is not None and not reuse else 0
        if reuse:
            assert cache is not None
            tk = cache.length
        else:
            assert key is not None
            tk = key.shape[1] + past
        # checked before the cache grows, so a call that raises leaves the cache as it was
        if mask is not None or key_padding_mask is not None or lengths is not None:
            mask = layer_mask(mask, key_padding_mask, lengths, (b, self.num_heads, tq, tk))
        packed = self._self_projection(query) if key is query and value is query else None
        finite = None  # q and k known free of NaN and inf (None: not checked here)
        if packed is not None:  # one product for q, k and v; one rotation for q and k
            q, k, v, qk = packed
            if self.rotary is not None:
                qk = self.rotary(qk, offset=past)
                q, k = qk[:, : self.num_heads], qk[:, self.num_heads :]
            # one sum over the new queries and keys; the cache knows about its older keys
            finite = None if tracing() else math.isfinite(float(qk.sum()))
            if cache is not None:
                k, v = cache.append(k, v, finite)
                finite = cache.keys_finite
        elif reuse:
            q = split_heads(self.q_proj(query), self.num_heads)  # (B, H, Tq, D)
            assert cache is not None and cache.key is not None and cache.value is not None
            k, v = cache.key, cache.value
            if k.shape[0] != b:
                raise ValueError(f"the static cache holds batch {k.shape[0]}, the query {b}")
        else:
            q = split_heads(self.q_proj(query), self.num_heads)  # (B, H, Tq, D)
            k = split_heads(self.k_proj(key), self.kv_heads)  # (B, Hkv, Tk, D)
            v = split_heads(self.v_proj(value), self.kv_heads)  # (B, Hkv, Tk, D)
            if self.rotary is not None:  # positions continue after the cached tokens
                q, k = self.rotary(q, offset=past), self.rotary(k, offset=past)
            if cache is not None:
                k, v = cache.append(k, v)
        if self.kv_heads != self.num_heads:
            group = self.num_heads // self.kv_heads
            k = k.repeat_interleave(group, dim=1)  # (B, H, Tk, D)
            v = v.repeat_interleave(group, dim=1)
        out = attend_heads(
            q,
            k,
            v,
            mask=mask,
            causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
            return_weights=return_weights,
            weights_heads=weights_heads,
            weights_rows=weights_rows,
            finite=finite,
        )
        return AttentionOutput(self.out_proj(merge_heads(out.context)), out.weights)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kv_heads={self.kv_heads}, "
            f"kdim={self.kdim}, vdim={self.vdim}, dropout={self.dropout}"
        )


@contextmanager
def packed_projections(model: nn.Module) -> Iterator[None]:
    """Inside this block every :class:`MultiHeadAttention` of ``model`` projects its
    self-attention queries, keys and values with one matrix product (the three weight matrices
    stacked once on entry) and rotates queries and keys together: fewer, larger operations for
    decoding loops, where each step is a handful of tokens. Meant for inference (generation
    uses it): the stacked copy does not follow changes to the weights made inside the block.
    Nested blocks are fine; the previous state is restored on exit.

    Example:
        >>> mha = MultiHeadAttention(16, num_heads=4).eval()
        >>> x = torch.randn(2, 5, 16)
        >>> with torch.no_grad(), packed_projections(mha):
        ...     packed = mha(x).context
        >>> bool(torch.allclose(packed, mha(x).context, atol=1e-6))
        True
    """
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    before = [m._packed for m in layers]
    try:
        with torch.no_grad():
            for m in layers:
                if m.kdim == m.vdim == m.embed_dim:
                    projs = (m.q_proj, m.k_proj, m.v_proj)
                    weight = torch.cat([p.weight for p in projs])
                    bias = None if m.q_proj.bias is None else torch.cat([p.bias for p in projs])
                    m._packed = (weight, bias)
        yield
    finally:
        for m, old in zip(layers, before, strict=True):
            m._packed = old
