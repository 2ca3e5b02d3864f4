"""Transformer blocks and positional encodings (Vaswani et al. 2017, arXiv:1706.03762).

The blocks are built on :class:`MultiHeadAttention`, so every kernel, the mask convention
(True = may attend) and weights on demand apply to them. ``norm_first=True`` (the default) is
the pre-norm arrangement of later Transformers (Xiong et al. 2020, arXiv:2002.04745):
x + f(LayerNorm(x)); ``norm_first=False`` is the paper's post-norm LayerNorm(x + f(x)), which
with ``activation="relu"`` computes what ``torch.nn.TransformerEncoderLayer`` /
``TransformerDecoderLayer`` compute. Dropout acts only in training.

Positions: :class:`SinusoidalPositions` (section 3.5 of the paper), :class:`LearnedPositions`
(added to the embeddings) and :class:`RotaryEmbedding` (RoPE, Su et al. 2021, arXiv:2104.09864),
which rotates each head's queries and keys by their position inside the attention.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import check_features, check_sizes
from .multihead import KVCache, MultiHeadAttention

__all__ = [
    "BlockOutput",
    "DecoderCache",
    "LearnedPositions",
    "RotaryEmbedding",
    "SinusoidalPositions",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _check_offset(offset: int, length: int, max_len: int, owner: str) -> None:
    if offset < 0 or offset + length > max_len:
        raise ValueError(
            f"{owner}: positions {offset}..{offset + length - 1} exceed max_len {max_len}"
        )


class SinusoidalPositions(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...), added to (B, T, d)
    embeddings; ``offset`` is the position of the first one (for cached decoding).

    >>> SinusoidalPositions(8, max_len=16)(torch.zeros(1, 3, 8))[0, 0, :2].tolist()
    [0.0, 1.0]
    """

    table: Tensor  # (max_len, E), a buffer

    def __init__(self, dim: int, max_len: int = 4096) -> None:
        super().__init__()
        check_sizes("SinusoidalPositions", dim=dim, max_len=max_len)
        pos = torch.arange(max_len, dtype=torch.float64)[:, None]
        rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(1e4) / dim))
        table = torch.zeros(max_len, dim, dtype=torch.float64)
        table[:, 0::2] = torch.sin(pos * rate)
        table[:, 1::2] = torch.cos(pos * rate[: dim // 2])
        self.register_buffer("table", table.float(), persistent=False)
        self.max_len = max_len

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x`` plus the sinusoidal positions offset..offset+T (Vaswani et al. 2017, section 3.5).

        Args:
            x: (B, T, E).
            offset: the position of x's first step (a decoder's steps so far).

        Returns:
            Tensor: (B, T, E)."""
        _check_offset(offset, x.shape[1], self.max_len, "SinusoidalPositions")
        return x + self.table[offset : offset + x.shape[1]].to(x.dtype)


class LearnedPositions(nn.Module):
    """A learned vector per position, added to (B, T, d) embeddings."""

    def __init__(self, dim: int, max_len: int = 1024) -> None:
        super().__init__()
        check_sizes("LearnedPositions", dim=dim, max_len=max_len)
        self.embed = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.max_len = max_len

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x`` plus a learned embedding of positions offset..offset+T.

        Args:
            x: (B, T, E).
            offset: the position of x's first step.

        Returns:
            Tensor: (B, T, E)."""
        _check_offset(offset, x.shape[1], self.max_len, "LearnedPositions")
        pos = torch.arange(offset, offset + x.shape[1], device=x.device)
        return x + self.embed(pos).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """RoPE: rotates each pair (x_i, x_{i + D/2}) of a head's vector by the angle
    pos * base^(-2i/D), so q_m . k_n depends on m - n only. Applied to (B, H, T, D) queries and
    keys inside :class:`MultiHeadAttention` (``rotary=``); ``offset`` is the first position.

    >>> rope = RotaryEmbedding(4)
    >>> q, k = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 1, 4)
    >>> a = (rope(q, offset=3) * rope(k, offset=1)).sum()
    >>> b = (rope(q, offset=7) * rope(k, offset=5)).sum()
    >>> bool(torch.isclose(a, b, atol=1e-5))
    True
    """

    inv_freq: Tensor  # (D/2,), a buffer

    def __init__(self, head_dim: int, base: float = 10_000.0, max_len: int = 1 << 16) -> None:
        super().__init__()
        check_sizes("RotaryEmbedding", head_dim=head_dim, max_len=max_len)
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even, got {head_dim}")
        self.head_dim, self.base, self.max_len = head_dim, base, max_len
        inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv.float(), persistent=False)
        self._cache: tuple[Tensor, Tensor] | None = None  # (cos, sin), see _tables

    def _tables(self, end: int, device, dtype) -> tuple[Tensor, Tensor]:
        """(cos, signed sin) of positions 0 .. at least end - 1, each (T, D): cos repeated
        for both halves, sin negated on the first half, so a rotation is
        x * cos + roll(x, D/2) * sin. Computed once per doubling (a decoder asks for one
        more position at every step)."""
        cached = self._cache
        if (
            cached is not None
            and cached[0].shape[0] >= end
            and cached[0].dtype == dtype
            and (cached[0].device == device)
        ):
            return cached
        size = min(self.max_len, max(end, 2 * (cached[0].shape[0] if cached else 64)))
        with torch.inference_mode(False):  # tables made while generating serve training too
            pos = torch.arange(size, device=device, dtype=torch.float32)
            angle = pos[:, None] * self.inv_freq.to(device)[None, :]  # (size, D/2)
            cos, sin = angle.cos(), angle.sin()
            self._cache = (
                torch.cat([cos, cos], -1).to(dtype),
                torch.cat([-sin, sin], -1).to(dtype),
            )
        return self._cache

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x`` rotated by its positions (Su et al. 2021): q.k then depends on the distance only.

        Args:
            x: (B, H, T, D), queries or keys.
            offset: the position of x's first step.

        Returns:
            Tensor: (B, H, T, D)."""
        t = x.shape[-2]
        _check_offset(offset, t, self.max_len, "RotaryEmbedding")
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"RotaryEmbedding({self.head_dim}) got vectors of {x.shape[-1]}")
        cos, sin = self._tables(offset + t, x.device, x.dtype)
        cos, sin = cos[offset : offset + t], sin[offset : offset + t]
        # first half: x1 cos - x2 sin; second half: x2 cos + x1 sin
        return torch.addcmul(x * cos, x.roll(self.head_dim // 2, dims=-1), sin)


@dataclass
class BlockOutput:
    """A block's output (B, T, E) and, on request, its weights (B, H, T, Tk)."""

    output: Tensor
    self_weights: Tensor | None = None
    cross_weights: Tensor | None = None


class _Block(nn.Module):
    """What both layers share: self-attention and the feed-forward network, each in a residual
    sublayer; the decoder's (``cross = True``) adds cross-attention and its norm."""

    cross = False

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_dim: int | None = None,
        dropout: float = 0.0,
        activation: str = "gelu",
        norm_first: bool = True,
        rotary: bool = False,
        kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        ff_dim = ff_dim or 4 * d_model
        check_sizes(type(self).__name__, d_model=d_model, ff_dim=ff_dim)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        rope = RotaryEmbedding(d_model // num_heads) if rotary else None
        self.self_attn = MultiHeadAttention(
            d_model, num_heads, kv_heads, dropout=dropout, rotary=rope
        )
        self.linear1, self.linear2 = nn.Linear(d_model, ff_dim), nn.Linear(ff_dim, d_model)
        self.norm1, self.norm_ff = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.act = ACTIVATIONS[activation]
        self.norm_first = norm_first
        if self.cross:
            self.cross_attn = MultiHeadAttention(d_model, num_heads, kv_heads, dropout=dropout)
            self.norm2 = nn.LayerNorm(d_model)

    def _drop(self, x: Tensor) -> Tensor:
        return self.drop(x) if self.training else x  # no call at all while decoding

    def _ff(self, x: Tensor) -> Tensor:
        return self._drop(self.linear2(self._drop(self.act(self.linear1(x)))))

    def _check_input(self, x: Tensor) -> None:
        """ValueError for an input this block cannot read, before any sublayer (torch's own
        LayerNorm message would not say which argument is wrong)."""
        check_features("x", x, self.norm1.normalized_shape[0])

    def _sublayer(self, x: Tensor, norm: nn.LayerNorm, fn) -> tuple[Tensor, Tensor | None]:
        """x + f(norm(x)) (pre-norm) or norm(x + f(x)) (post-norm); f returns (out, weights)."""
        out, weights = fn(norm(x) if self.norm_first else x)
        x = x + self._drop(out)
        return (x if self.norm_first else norm(x)), weights


class TransformerEncoderLayer(_Block):
    """Self-attention and a feed-forward network, each in a residual sublayer.

    Shapes: x (B, T, E); ``mask`` (True = may attend, broadcast to (B, H, T, T)),
    ``key_padding_mask`` (B, T) or ``lengths`` (B,), ``causal``. With ``causal=True`` and a
    ``cache`` (:class:`KVCache`) it is a decoder-only (GPT-style) block fed new tokens only.
    Returns BlockOutput(output (B, T, E), self_weights (B, H, T, T) with ``return_weights``;
    ``weights_heads`` / ``weights_rows`` keep only those heads / query rows).

    Example:
        >>> layer = TransformerEncoderLayer(32, num_heads=4).eval()
        >>> out = layer(torch.randn(2, 7, 32), lengths=torch.tensor([7, 3]), return_weights=True)
        >>> out.output.shape, out.self_weights.shape
        (torch.Size([2, 7, 32]), torch.Size([2, 4, 7, 7]))
    """

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        lengths: Tensor | None = None,
        causal: bool = False,
        return_weights: bool = False,
        cache: KVCache | None = None,
        weights_heads=None,
        weights_rows=None,
    ) -> BlockOutput:
        """Self-attention and the feed-forward network, each with its residual and norm.

        Args:
            x: (B, T, E).
            mask: True = may attend, broadcast to (B, H, T, T).
            key_padding_mask: (B, T), True on real steps; lengths: (B,), its shortcut.
            causal: step i sees steps up to i (a decoder-only model).
            return_weights: also return the self-attention weights (default False).
            cache: a KVCache for incremental decoding.
            weights_heads, weights_rows: the weights of those heads and rows only.

        Returns:
            BlockOutput: output (B, T, E) and self_weights (B, H, T, Tk) or None."""
        self._check_input(x)

        def attn(h):
            out = self.self_attn(
                h,
                mask=mask,
                key_padding_mask=key_padding_mask,
                lengths=lengths,
                causal=causal,
                cache=cache,
                return_weights=return_weights,
                weights_heads=weights_heads,
                weights_rows=weights_rows,
            )
            return out.context, out.weights

        x, weights = self._sublayer(x, self.norm1, attn)
        x, _ = self._sublayer(x, self.norm_ff, lambda h: (self._ff(h), None))
        return BlockOutput(x, weights)


class TransformerDecoderLayer(_Block):
    """Causal self-attention, cross-attention to ``memory`` and a feed-forward network.

    Shapes: x (B, T, E), memory (B, S, E); ``memory_lengths`` (B,) or
    ``memory_key_padding_mask`` (B, S) mark the real source positions. With ``cache`` (a
    :class:`DecoderCache`) x holds only the new tokens: self-attention keys/values are appended,
    cross-attention keys/values are projected once and reused, and the result equals running
    the whole prefix again. Returns BlockOutput(output, self_weights (B, H, T, T_seen),
    cross_weights (B, H, T, S)) with ``return_weights``.

    Example:
        >>> layer = TransformerDecoderLayer(32, num_heads=4).eval()
        >>> x, memory = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
        >>> layer(x, memory, return_weights=True).cross_weights.shape
        torch.Size([2, 4, 5, 9])
    """

    cross = True

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        *,
        memory_lengths: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        cache: DecoderCache | None = None,
        return_weights: bool = False,
        weights_heads=None,
        weights_rows=None,
    ) -> BlockOutput:
        """Causal self-attention, cross-attention to ``memory`` and the feed-forward network.

        Args:
            x: (B, T, E), the decoder's steps.
            memory: (B, S, E), the encoder's output (None when ``cache`` holds its keys).
            memory_lengths: (B,) real encoder steps; memory_key_padding_mask: (B, S), the same.
            cache: a DecoderCache for incremental decoding.
            return_weights: also return both weights (default False).
            weights_heads, weights_rows: the weights of those heads and rows only.

        Returns:
            BlockOutput: output (B, T, E), self_weights (B, H, T, T) and cross_weights (B, H, T, S)
            or None."""
        self._check_input(x)
        pick = dict(
            return_weights=return_weights, weights_heads=weights_heads, weights_rows=weights_rows
        )
        self_cache = cache.self_attn if cache is not None else None
        cross_cache = cache.cross_attn if cache is not None else None

        def self_attn(h):
            out = self.self_attn(h, causal=True, cache=self_cache, **pick)
            return out.context, out.weights

        def cross_attn(h):
            out = self.cross_attn(
                h,
                memory,
                memory,
                lengths=memory_lengths,
                key_padding_mask=memory_key_padding_mask,
                cache=cross_cache,
                **pick,
            )
            return out.context, out.weights

        x, self_w = self._sublayer(x, self.norm1, self_attn)
        x, cross_w = self._sublayer(x, self.norm2, cross_attn)
        x, _ = self._sublayer(x, self.norm_ff, lambda h: (self._ff(h), None))
        return BlockOutput(x, self_w, cross_w)


@dataclass
class DecoderCache:
    """One decoder layer's caches: self-attention keys/values grow by each step's tokens;
    cross-attention keys/values are projected from the memory once."""

    self_attn: KVCache
    cross_attn: KVCache

    @classmethod
    def empty(cls) -> DecoderCache:
        return cls(KVCache(), KVCache(static=True))
