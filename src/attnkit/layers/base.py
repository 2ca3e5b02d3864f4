"""Shared plumbing of the query/keys/values attention layers."""

from __future__ import annotations

from torch import Tensor, nn

from ..functional import masks
from ..functional.output import AttentionOutput


def check_features(name: str, x: Tensor, dim: int | None, ndims: tuple[int, ...] = (3,)) -> None:
    """ValueError unless ``x`` is floating with ``ndims`` dims, last dim ``dim`` and T >= 1."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want} (B, T, D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} last dim must be {dim}, got shape {tuple(x.shape)}")
    if x.dim() >= 3 and x.shape[-2] == 0:
        raise ValueError(f"{name} is an empty sequence (shape {tuple(x.shape)}); need T >= 1")


def check_same_batch(**tensors: Tensor) -> None:
    sizes = {name: t.shape[0] for name, t in tensors.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes differ: {sizes}")


def multihead_inputs(
    query: Tensor, key: Tensor | None, value: Tensor | None, dims: tuple[int, int, int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Default key to query and value to key; check (B, T, dim) shapes, batches and lengths."""
    key = query if key is None else key
    value = key if value is None else value
    for name, x, dim in zip(("query", "key", "value"), (query, key, value), dims, strict=True):
        check_features(name, x, dim)
    check_same_batch(query=query, key=key, value=value)
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"key and value lengths differ: {key.shape[1]} and {value.shape[1]}")
    return query, key, value


def heads_mask(mask: Tensor | None) -> Tensor | None:
    """A key padding mask (B, Tk) as (B, 1, 1, Tk); other masks unchanged."""
    return mask[:, None, None, :] if mask is not None and mask.dim() == 2 else mask


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, heads * D) -> (B, heads, T, D)."""
    b, t, e = x.shape
    return x.view(b, t, heads, e // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H * D)."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class QKVAttention(nn.Module):
    """Base of layers that score a query against keys: Additive, Multiplicative, Local.

    Subclasses define ``score(query, keys) -> (B, Tq, Tk)`` and ``_attend``. ``forward`` accepts
    a query of shape (B, Tq, Dq), or (B, Dq) for one decoder step (then context is (B, Dv) and
    weights (B, Tk)). Values default to the keys. A 2-D mask (B, Tk) or ``lengths`` (B,) is a key
    padding mask; other masks broadcast to (B, Tq, Tk).
    """

    query_dim: int
    key_dim: int

    def score(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _attend(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None, return_weights: bool
    ) -> AttentionOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
    ) -> AttentionOutput:
        query, keys, values, mask, single = self._prepare(query, keys, values, mask, lengths)
        return self._finish(self._attend(query, keys, values, mask, return_weights), single)

    def _prepare(self, query, keys, values, mask, lengths):
        """Validate; return (query (B, Tq, Dq), keys, values, mask, was_single_step)."""
        values = keys if values is None else values
        check_features("query", query, self.query_dim, ndims=(2, 3))
        check_features("keys", keys, self.key_dim)
        check_features("values", values, None)
        check_same_batch(query=query, keys=keys, values=values)
        if keys.shape[1] != values.shape[1]:
            raise ValueError(
                f"keys and values must have the same length Tk, got {keys.shape[1]} "
                f"and {values.shape[1]}"
            )
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)  # (B, 1, Dq)
        mask = masks.key_padding(mask, lengths, keys.shape[1])
        return query, keys, values, mask, single

    @staticmethod
    def _finish(out: AttentionOutput, single: bool) -> AttentionOutput:
        if not single:
            return out
        weights = out.weights.squeeze(1) if out.weights is not None else None
        return AttentionOutput(out.context.squeeze(1), weights)
