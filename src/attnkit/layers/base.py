"""Shared plumbing of the query/keys/values attention layers."""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from .._ext.tracing import tracing
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


def check_sizes(owner: str, **sizes: int | None) -> None:
    """ValueError unless every given size is an int >= 1 (None means "not given")."""
    for name, value in sizes.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")


def check_dtype(module: nn.Module, **tensors: Tensor | None) -> None:
    """ValueError unless floating inputs have the dtype of the module's parameters (an fp16
    input into an fp32 layer would otherwise fail deep inside a matrix product)."""
    dtype = _param_dtype(module)
    if dtype is None:
        return
    for name, x in tensors.items():
        if isinstance(x, Tensor) and x.is_floating_point() and x.dtype != dtype:
            owner = type(module).__name__
            raise ValueError(
                f"{name} is {x.dtype} but {owner}'s parameters are {dtype}; convert one "
                f"of them: layer.to({x.dtype}) or {name}.to({dtype})"
            )


def _param_dtype(module: nn.Module):
    """The dtype of the module's first parameter, depth first (what ``next(parameters())``
    gives, without building generators on every call of a decoding step)."""
    for param in module._parameters.values():
        if param is not None:
            return param.dtype
    for child in module._modules.values():
        if child is not None and (dtype := _param_dtype(child)) is not None:
            return dtype
    return None


def check_lengths(lengths: Tensor, longest: int) -> None:
    """ValueError unless every length is in 1..``longest``. Not checked while torch traces a
    graph: a graph holds no branch on values."""
    if not tracing() and ((lengths < 1).any() or (lengths > longest).any()):
        raise ValueError(f"lengths must be in 1..{longest}")


def check_same_batch(**tensors: Tensor) -> None:
    sizes = {name: t.shape[0] for name, t in tensors.items()}
    first = next(iter(sizes.values()), None)
    if any(size != first for size in sizes.values()):  # no set: traced sizes are unhashable
        raise ValueError(f"batch sizes differ: {sizes}")


def multihead_inputs(
    query: Tensor, key: Tensor | None, value: Tensor | None, dims: tuple[int, int, int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Default key to query and value to key; check (B, T, dim) shapes, batches and lengths."""
    if key is None and value is None and dims[0] == dims[1] == dims[2]:  # self-attention
        check_features("query", query, dims[0])
        return query, query, query
    key = query if key is None else key
    value = key if value is None else value
    for name, x, dim in zip(("query", "key", "value"), (query, key, value), dims, strict=True):
        check_features(name, x, dim)
    check_same_batch(query=query, key=key, value=value)
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"key and value lengths differ: {key.shape[1]} and {value.shape[1]}")
    return query, key, value


def layer_mask(
    mask: Tensor | None,
    key_padding_mask: Tensor | None,
    lengths: Tensor | None,
    scores_shape: tuple[int, ...],
) -> Tensor | None:
    """One bool mask for ``attend`` from a layer's three mask arguments.

    ``mask`` broadcasts to ``scores_shape`` ((B, H, Tq, Tk) or (B, Tq, Tk)) by torch's rules, as
    in ``attend`` and SDPA, so a 2-D mask is (Tq, Tk); ``key_padding_mask`` (B, Tk) and
    ``lengths`` (B,) mark the real keys. All three are combined with AND.
    """
    b, tk = scores_shape[0], scores_shape[-1]
    if mask is not None:
        letters = "(B, H, Tq, Tk)" if len(scores_shape) == 4 else "(B, Tq, Tk)"
        hint = (
            f"a mask broadcastable to {letters} = {tuple(scores_shape)}, a 2-D mask being "
            "(Tq, Tk); key padding goes in key_padding_mask= or lengths="
        )
        masks.check_mask(mask, scores_shape, hint)
    pad = masks.key_padding(key_padding_mask, lengths, b, tk)
    if pad is not None:
        pad = pad.view(b, *([1] * (len(scores_shape) - 2)), tk)  # (B, 1, [1,] Tk)
    return masks.combine(mask, pad)


def weights_flag(return_weights: bool, need_weights: bool | None, owner: str) -> bool:
    """``return_weights``, or the deprecated ``need_weights`` alias when that is given."""
    if need_weights is None:
        return return_weights
    warnings.warn(
        f"{owner}(need_weights=...) is deprecated; use return_weights=...",
        DeprecationWarning,
        stacklevel=3,
    )
    return bool(need_weights)


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
    weights (B, Tk)). Values default to the keys. ``mask`` broadcasts to the weights' shape by
    torch's rules: (B, Tq, Tk), so a 2-D mask is (Tq, Tk); for a one-step query, (B, Tk).
    ``key_padding_mask`` (B, Tk) or ``lengths`` (B,) mark the real keys.
    """

    query_dim: int
    key_dim: int | None  # None: any (keys that give only their positions)

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
        key_padding_mask: Tensor | None = None,
        lengths: Tensor | None = None,
        return_weights: bool = True,
    ) -> AttentionOutput:
        """Attention of ``query`` over ``keys``, with this layer's score.

        Args:
            query: (B, Tq, Dq), or (B, Dq) for one query per example (then Tq is dropped from
                the outputs).
            keys: (B, Tk, Dk).
            values: (B, Tk, Dv); default ``keys``.
            mask: True = may attend, broadcast to (B, Tq, Tk) (a 2-D mask is (Tq, Tk)).
            key_padding_mask: (B, Tk), True on real keys.
            lengths: (B,) real keys per example, the shortcut for ``key_padding_mask``.
            return_weights: also return the weights (default True).

        Returns:
            AttentionOutput: context (B, Tq, Dv) and weights (B, Tq, Tk), rows summing to 1 (0 for a
            query whose keys are all masked), or None without ``return_weights``.

        Raises:
            ValueError: for shapes, dtypes or masks that do not fit."""
        query, keys, values, mask, single = self._prepare(
            query, keys, values, mask, key_padding_mask, lengths
        )
        return self._finish(self._attend(query, keys, values, mask, return_weights), single)

    def _prepare(self, query, keys, values, mask, key_padding_mask, lengths):
        """Validate; return (query (B, Tq, Dq), keys, values, mask, was_single_step)."""
        values = keys if values is None else values
        check_features("query", query, self.query_dim, ndims=(2, 3))
        check_features("keys", keys, self.key_dim)
        check_features("values", values, None)
        check_same_batch(query=query, keys=keys, values=values)
        check_dtype(self, query=query, keys=keys, values=values)
        if keys.shape[1] != values.shape[1]:
            raise ValueError(
                f"keys and values must have the same length Tk, got {keys.shape[1]} "
                f"and {values.shape[1]}"
            )
        single = query.dim() == 2
        b, tk = keys.shape[:2]
        if single:
            query = query.unsqueeze(1)  # (B, 1, Dq)
            if mask is not None:  # one step: the mask broadcasts to the weights (B, Tk)
                masks.check_mask(mask, (b, tk), f"(B, Tk) = {(b, tk)} for a one-step query")
                mask = mask.unsqueeze(-2)  # (..., 1, Tk)
        mask = layer_mask(mask, key_padding_mask, lengths, (b, query.shape[1], tk))
        return query, keys, values, mask, single

    @staticmethod
    def _finish(out: AttentionOutput, single: bool) -> AttentionOutput:
        if not single:
            return out
        weights = out.weights.squeeze(1) if out.weights is not None else None
        return AttentionOutput(out.context.squeeze(1), weights)
