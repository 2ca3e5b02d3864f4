"""``attnkit tour``: a short tour of the attention families on small inputs."""

from __future__ import annotations

import argparse

import torch

import attnkit as ak
from attnkit.viz import render_mask, render_weights


def _copy_task_alignment(seed: int) -> tuple[torch.Tensor, str, str]:
    """Train Bahdanau attention for a few hundred steps to point at the matching key.

    Keys are random embeddings of the letters of a word; the query for output step t is the
    embedding of letter t plus noise. A trained additive score learns to look at key t.
    """
    g = torch.Generator().manual_seed(seed)
    word = "attention"
    table = torch.randn(26, 16, generator=g)
    keys = table[[ord(c) - 97 for c in word]].unsqueeze(0)  # (1, T, 16)
    attn = ak.AdditiveAttention(16, 16, 32)
    opt = torch.optim.Adam(attn.parameters(), lr=0.03)
    target = torch.arange(len(word))
    for _ in range(200):
        queries = keys + 0.3 * torch.randn(keys.shape, generator=g)
        logw = attn(queries, keys).weights.clamp_min(1e-9).log()  # (1, T, T)
        loss = torch.nn.functional.nll_loss(logw[0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        weights = attn(keys, keys).weights[0]
    return weights, word, word


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    print("attnkit", ak.__version__, "- masks are True = may attend; causal aligns bottom-right\n")
    print("causal(4, 6): queries are the last 4 of 6 positions")
    print(render_mask(ak.masks.causal(4, 6)), "\n")
    print("window(6, 6, left=2, right=0)")
    print(render_mask(ak.masks.window(6, 6, 2, 0)), "\n")

    x = torch.randn(2, 7, 16)
    lengths = torch.tensor([7, 4])
    layers = [
        ("AdditiveAttention", ak.AdditiveAttention(16, 16, 8), "qk"),
        ("MultiplicativeAttention", ak.MultiplicativeAttention(16, score="general"), "qk"),
        ("LocalAttention", ak.LocalAttention(ak.MultiplicativeAttention(16), 1), "qk"),
        ("MultiHeadAttention", ak.MultiHeadAttention(16, 4, kv_heads=2), "mha"),
        ("SelfAttention", ak.SelfAttention(16, window=2), "x"),
        ("FeedForwardAttention", ak.FeedForwardAttention(16), "x"),
        ("AttentionGate", ak.AttentionGate(16), "x"),
    ]
    print(f"{'layer':<24} {'context':<14} {'weights':<16} rows sum to")
    for name, layer, kind in layers:
        if kind == "qk":
            out = layer(x, x, lengths=lengths)
        elif kind == "mha":
            out = layer(x, lengths=lengths, causal=True, return_weights=True)
        else:
            out = layer(x, lengths=lengths)
        sums = out.weights.sum(-1)
        print(
            f"{name:<24} {str(tuple(out.context.shape)):<14} {str(tuple(out.weights.shape)):<16} "
            f"{sums.min().item():.3f}..{sums.max().item():.3f}"
        )
    image = torch.randn(2, 16, 8, 8)
    for name, layer in [("SqueezeExcite", ak.SqueezeExcite(16, 4)), ("CBAM", ak.CBAM(16, 4))]:
        print(f"{name:<24} {str(tuple(layer(image).context.shape)):<14}")

    weights, rows, cols = _copy_task_alignment(args.seed)
    print("\nBahdanau attention trained for 200 steps to find each letter (row = query):")
    print(render_weights(weights, list(rows), list(cols)))
    same = torch.tensor([[a == b for b in cols] for a in rows])
    share = weights[same].sum().item() / len(rows)
    print(f"\nshare of attention on a key with the query's letter: {share:.0%}")
    return 0
