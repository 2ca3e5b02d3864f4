"""Multi-head linear attention (Katharopoulos et al. 2020) with its recurrent form."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..functional import attend
from ..functional.kernels.linear import recurrent_step
from ..functional.output import AttentionOutput
from .base import (
    check_dtype,
    check_features,
    check_sizes,
    layer_mask,
    merge_heads,
    multihead_inputs,
    split_heads,
    weights_flag,
)


@dataclass
class LinearState:
    """The recurrent state of causal linear attention after t tokens, per head:
    S = sum phi(k) v^T of shape (B, H, D, D) and z = sum phi(k) of shape (B, H, D)."""

    s: Tensor
    z: Tensor
    length: int


class LinearAttention(nn.Module):
    """Multi-head linear attention, Katharopoulos et al. 2020 (arXiv:2006.16236):

        head_h(Q, K, V)_i = phi(q_i)^T sum_j phi(k_j) v_j^T / phi(q_i)^T sum_j phi(k_j),

    phi(x) = elu(x) + 1, with the same projections as ``MultiHeadAttention``. Time and memory
    grow linearly with the sequence length. With ``causal=True`` the sums run over j <= i, and
    ``step`` computes the same thing one token at a time from a constant-size state (the
    "transformers are RNNs" form), for generation.

    Shapes: query (B, Tq, E); key and value (B, Tk, E), both default to query; ``mask`` a bool
    mask broadcastable to (B, H, Tq, Tk) (True = may attend; a 2-D mask is (Tq, Tk); one that
    varies per query costs O(Tq Tk)); ``key_padding_mask`` (B, Tk) or ``lengths`` (B,) mark the
    real keys. Returns AttentionOutput(context (B, Tq, E), weights (B, H, Tq, Tk) when
    ``return_weights``).

    Example:
        >>> attn = LinearAttention(32, num_heads=4)
        >>> x = torch.randn(2, 100, 32)
        >>> full = attn(x, causal=True).context
        >>> state, steps = None, []
        >>> for t in range(100):
        ...     out, state = attn.step(x[:, t], state)
        ...     steps.append(out)
        >>> torch.allclose(full, torch.stack(steps, 1), atol=1e-5)
        True
    """

    def __init__(self, embed_dim: int, num_heads: int = 1, bias: bool = True) -> None:
        super().__init__()
        check_sizes("LinearAttention", embed_dim=embed_dim, num_heads=num_heads)
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

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
        need_weights: bool | None = None,
    ) -> AttentionOutput:
        """Linear attention (Katharopoulos et al. 2020) of ``query`` over ``key``.

        Args:
            query: (B, Tq, E).
            key, value: (B, Tk, E); default ``query`` (self-attention).
            mask: True = may attend; only key padding ((B, Tk) or (B, 1, Tk)) is linear, other masks
                fall back to the quadratic form.
            key_padding_mask: (B, Tk), True on real keys; lengths: (B,), its shortcut.
            causal: each query sees keys up to its own position (bottom-right aligned).
            return_weights: also return the (B, H, Tq, Tk) weights (default False).
            need_weights: deprecated alias of ``return_weights``.

        Returns:
            AttentionOutput: context (B, Tq, E) and weights (B, H, Tq, Tk) or None."""
        return_weights = weights_flag(return_weights, need_weights, "LinearAttention")
        query, key, value = multihead_inputs(query, key, value, (self.embed_dim,) * 3)
        check_dtype(self, query=query, key=key, value=value)
        b, tq, tk = query.shape[0], query.shape[1], key.shape[1]
        mask = layer_mask(mask, key_padding_mask, lengths, (b, self.num_heads, tq, tk))
        q, k, v = (
            split_heads(proj(x), self.num_heads)
            for proj, x in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        out = attend(
            q, k, v, score="linear", mask=mask, causal=causal, return_weights=return_weights
        )
        return AttentionOutput(self.out_proj(merge_heads(out.context)), out.weights)

    def step(self, x: Tensor, state: LinearState | None = None) -> tuple[Tensor, LinearState]:
        """Causal self-attention for one new token x (B, E) given the state of the tokens
        before it (None at the start): (output (B, E), new state). Equal to position t of
        ``forward(x_all, causal=True)``."""
        check_features("x", x, self.embed_dim, ndims=(2,))
        check_dtype(self, x=x)
        if state is not None and state.s.shape[0] != x.shape[0]:
            raise ValueError(f"state has batch {state.s.shape[0]}, x has {x.shape[0]}")
        heads = (x.shape[0], self.num_heads, self.head_dim)
        q, k, v = (proj(x).view(heads) for proj in (self.q_proj, self.k_proj, self.v_proj))
        prev = None if state is None else (state.s, state.z)
        context, (s, z) = recurrent_step(q, k, v, prev)  # (B, H, D)
        out = self.out_proj(context.reshape(x.shape[0], self.embed_dim).to(x.dtype))
        return out, LinearState(s, z, 1 if state is None else state.length + 1)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


__all__ = ["LinearAttention", "LinearState"]
