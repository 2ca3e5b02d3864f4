"""Masked inputs never reach an output: every layer and kernel, with the padded positions of
its keys (and of its queries, for layers that read one sequence) filled with NaN or inf, gives
the real rows exactly what it gives with zeros there."""

import pytest
import torch

import attnkit as ak
from attnkit.functional import attend, masks
from attnkit.functional.attend import ENV_IMPL

B, T, D = 3, 7, 8
LENGTHS = torch.tensor([7, 4, 1])
KERNELS = ["eager", "sdpa", "chunked"]
FILLS = [float("nan"), float("inf"), float("-inf")]


def _poison(t: torch.Tensor, lengths: torch.Tensor, fill: float, dim: int = 1) -> torch.Tensor:
    """``t`` with the positions at or past each example's length along ``dim`` set to ``fill``."""
    t = t.clone()
    steps = torch.arange(t.shape[dim])
    pad = steps[None, :] >= lengths[:, None]  # (B, T)
    shape = [1] * t.dim()
    shape[0], shape[dim] = t.shape[0], t.shape[dim]
    return t.masked_fill(pad.reshape(shape), fill)


def _real_rows(out: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    return [out[b, : int(n)] for b, n in enumerate(lengths)]


@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("fill", FILLS, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("heads", [None, 2], ids=["3d", "4d"])
def test_attend_ignores_masked_keys_and_values(impl, fill, heads):
    torch.manual_seed(0)
    shape = (B, T, D) if heads is None else (B, heads, T, D)
    q, k, v = torch.randn(shape), torch.randn(shape), torch.randn(shape)
    mask = masks.padding(LENGTHS)[:, None, :]  # (B, 1, Tk)
    if heads is not None:
        mask = mask[:, None]
    dim = 1 if heads is None else 2
    clean = attend(q, k, v, mask=mask, impl=impl, return_weights=True)
    dirty = attend(
        q,
        _poison(k, LENGTHS, fill, dim),
        _poison(v, LENGTHS, fill, dim),
        mask=mask,
        impl=impl,
        return_weights=True,
    )
    assert torch.isfinite(dirty.context).all() and torch.isfinite(dirty.weights).all()
    torch.testing.assert_close(dirty.context, clean.context, atol=1e-6, rtol=0)
    torch.testing.assert_close(dirty.weights, clean.weights, atol=1e-6, rtol=0)


def _layers():
    """name -> (layer, call(layer, x, lengths) -> a (B, T or 1, ...) output of real rows)."""
    mha = ak.MultiHeadAttention(D, 2)
    return {
        "additive": (ak.AdditiveAttention(D, D, 6), lambda m, x, n: m(x, x, lengths=n).context),
        "multiplicative": (
            ak.MultiplicativeAttention(D, score="general"),
            lambda m, x, n: m(x, x, lengths=n).context,
        ),
        "local": (
            ak.LocalAttention(ak.MultiplicativeAttention(D), 2),
            lambda m, x, n: m(x, x, lengths=n).context,
        ),
        "multihead": (mha, lambda m, x, n: m(x, x, x, lengths=n).context),
        "linear": (ak.LinearAttention(D, 2), lambda m, x, n: m(x, x, x, lengths=n).context),
        "self-attention": (
            ak.SelfAttention(D, "multiplicative"),
            lambda m, x, n: m(x, lengths=n).context,
        ),
        "feed-forward": (
            ak.FeedForwardAttention(D, 6),
            lambda m, x, n: m(x, lengths=n).context[:, None],
        ),
        "gate": (ak.AttentionGate(D), lambda m, x, n: m(x, lengths=n).context),
        "encoder-layer": (
            ak.TransformerEncoderLayer(D, 2, 16, dropout=0.0),
            lambda m, x, n: m(x, key_padding_mask=masks.padding(n, T)).output,
        ),
    }


LAYERS = _layers()


@pytest.mark.parametrize("impl", KERNELS)
@pytest.mark.parametrize("fill", FILLS, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_no_layer_lets_a_padded_position_reach_a_real_row(name, fill, impl, monkeypatch):
    monkeypatch.setenv(ENV_IMPL, impl)
    layer, run = LAYERS[name]
    layer.eval()
    torch.manual_seed(1)
    x = torch.randn(B, T, D)
    with torch.no_grad():
        clean = run(layer, _poison(x, LENGTHS, 0.0), LENGTHS)
        dirty = run(layer, _poison(x, LENGTHS, fill), LENGTHS)
    rows = LENGTHS if clean.shape[1] == T else torch.ones(B, dtype=torch.long)
    for got, want in zip(_real_rows(dirty, rows), _real_rows(clean, rows), strict=True):
        assert torch.isfinite(got).all(), (name, got)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    if name == "gate":  # a padded step's output is 0, whatever its input was
        assert (dirty[~masks.padding(LENGTHS, T)] == 0).all()
