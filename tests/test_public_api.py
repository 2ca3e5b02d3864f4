"""Every layer named in DESIGN.md imports from ``attnkit`` and trains: forward, backward, and a
finite gradient for every parameter."""

import pytest
import torch

import attnkit as ak

B, T, D = 2, 6, 8
LENGTHS = torch.tensor([6, 3])

LAYERS = {
    "AdditiveAttention": (lambda: ak.AdditiveAttention(D, D, 5), "qk"),
    "MultiplicativeAttention": (lambda: ak.MultiplicativeAttention(D, D, "general"), "qk"),
    "LocalAttention": (
        lambda: ak.LocalAttention(ak.AdditiveAttention(D, D, 5), 2, "predictive"),
        "qk",
    ),
    "MultiHeadAttention": (lambda: ak.MultiHeadAttention(D, 2, kv_heads=1), "mha"),
    "SelfAttention": (lambda: ak.SelfAttention(D, "additive", window=2), "x"),
    "FeedForwardAttention": (lambda: ak.FeedForwardAttention(D, hidden_dim=4), "x"),
    "AttentionGate": (lambda: ak.AttentionGate(D), "x"),
    "HierarchicalAttention": (lambda: ak.HierarchicalAttention(D, 3, 4), "doc"),
    "SqueezeExcite": (lambda: ak.SqueezeExcite(D, 2), "image"),
    "SpatialAttention": (lambda: ak.SpatialAttention(), "image"),
    "CBAM": (lambda: ak.CBAM(D, 2), "image"),
}


def run(layer, kind):
    if kind == "qk":
        return layer(torch.randn(B, T, D), torch.randn(B, T + 1, D), lengths=LENGTHS + 1).context
    if kind == "mha":
        keep = ak.masks.padding(LENGTHS, T)
        return layer(
            torch.randn(B, T, D), key_padding_mask=keep, causal=True, return_weights=True
        ).context
    if kind == "doc":  # 2 documents of up to 3 sentences of up to T words
        return layer(torch.randn(B, 3, T, D), torch.tensor([[6, 2, 0], [3, 0, 0]])).context
    if kind == "x":
        return layer(torch.randn(B, T, D), lengths=LENGTHS).context
    return layer(torch.randn(B, D, 5, 5)).context


@pytest.mark.parametrize("name", LAYERS)
def test_public_layer_trains(name):
    assert hasattr(ak, name) and name in ak.__all__
    make, kind = LAYERS[name]
    layer = make()
    assert isinstance(layer, getattr(ak, name))
    out = run(layer, kind)
    (out.square().mean()).backward()
    params = dict(layer.named_parameters())
    assert params, f"{name} has no parameters"
    for pname, p in params.items():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"


def test_functional_names():
    for name in ("attend", "AttentionOutput", "masks", "masked_softmax", "KVCache"):
        assert hasattr(ak, name)
    for fn in ("padding", "causal", "window", "combine"):
        assert callable(getattr(ak.masks, fn))
