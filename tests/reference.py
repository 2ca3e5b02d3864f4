"""Readable float64 reference implementations the library is tested against."""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from attnkit.functional import attend, masks
from attnkit.functional.attend import ENV_IMPL
from attnkit.functional.scores import AdditiveParams


def ref_causal(tq: int, tk: int) -> Tensor:
    """Bottom-right causal mask written as loops."""
    m = torch.zeros(tq, tk, dtype=torch.bool)
    for i in range(tq):
        for j in range(tk):
            m[i, j] = j <= i + (tk - tq)
    return m


def ref_window(tq: int, tk: int, left, right) -> Tensor:
    m = torch.zeros(tq, tk, dtype=torch.bool)
    for i in range(tq):
        c = i + (tk - tq)
        for j in range(tk):
            m[i, j] = (left is None or j >= c - left) and (right is None or j <= c + right)
    return m


def ref_scores(q: Tensor, k: Tensor, score="scaled_dot", params=None, scale=None) -> Tensor:
    q, k = q.double(), k.double()
    if score in ("dot", "scaled_dot"):
        s = torch.einsum("...qd,...kd->...qk", q, k)
        if score == "scaled_dot":
            s = s * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
            scale = None
    elif score == "general":
        s = torch.einsum("...qd,de,...ke->...qk", q, params.double(), k)
    elif score == "additive":
        w_q, w_k, v = (p.double() for p in params[:3])
        wq = torch.einsum("...qd,hd->...qh", q, w_q)
        uk = torch.einsum("...kd,hd->...kh", k, w_k)
        if len(params) > 3 and params[3] is not None:
            uk = uk + params[3].double()
        s = torch.einsum(
            "...qkh,h->...qk", torch.tanh(wq[..., :, None, :] + uk[..., None, :, :]), v
        )
    else:
        s = score(q, k)
    return s if scale is None else s * scale


def attention_ref(q, k, v, score="scaled_dot", params=None, mask=None, scale=None):
    """(context, weights) in float64; fully-masked rows give zeros."""
    s = ref_scores(q, k, score, params, scale)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return torch.einsum("...qk,...kd->...qd", w, v.double()), w


# -- inputs shared by the attention tests -------------------------------------------------
def score_args(score, dq, dk, dtype=torch.float32, hidden=6):
    """(score, score_params) for ``attend``, and the same for the reference."""
    if score == "general":
        w = torch.randn(dq, dk, dtype=dtype) / math.sqrt(dq)
        return score, w
    if score == "additive":
        p = AdditiveParams(
            torch.randn(hidden, dq, dtype=dtype),
            torch.randn(hidden, dk, dtype=dtype),
            torch.randn(hidden, dtype=dtype),
            torch.randn(hidden, dtype=dtype),
        )
        return score, p
    if score == "callable":
        return (lambda q, k: -torch.cdist(q, k)), None
    return score, None


def make_qkv(lead, tq, tk, d, dv=None, dtype=torch.float32, grad=False):
    q = torch.randn(*lead, tq, d, dtype=dtype, requires_grad=grad)
    k = torch.randn(*lead, tk, d, dtype=dtype, requires_grad=grad)
    v = torch.randn(*lead, tk, dv or d, dtype=dtype, requires_grad=grad)
    return q, k, v


def full_ref_mask(mask, tq, tk, causal, window):
    m = torch.ones(tq, tk, dtype=torch.bool)
    if causal:
        m = m & ref_causal(tq, tk)
    if window is not None:
        m = m & ref_window(tq, tk, *window)
    return m if mask is None else m & mask


MASK_CASES = ["none", "padding", "causal", "window", "random", "causal+padding"]


def mask_case(case, lead, tq, tk):
    """(mask, causal, window) for a named case; padding leaves some rows fully masked."""
    b = lead[0]
    mask, causal, window = None, False, None
    if "padding" in case:
        lengths = torch.randint(0, tk + 1, (b,))
        lengths[0] = tk
        pad = masks.padding(lengths, tk)
        mask = pad[:, None, None, :] if len(lead) == 2 else pad[:, None, :]
    if case in ("random", "fully_masked_rows"):
        mask = torch.rand(*lead, tq, tk) > 0.3
    if case == "fully_masked_rows":  # plus causal, with two rows that see no key at all
        mask[..., 0, :] = False
        mask[..., tq // 2, :] = False
        causal = True
    if "causal" in case:
        causal = True
    if case == "window":
        window = (2, 1)
    return mask, causal, window


def forced(impl: str):
    """``attend`` with ``impl`` forced as ATTNKIT_ATTENTION_IMPL forces it: that kernel where it
    can serve the call, eager (linear for "linear") where it cannot; "auto" forces nothing."""

    def call(*args, **kwargs):
        before = os.environ.get(ENV_IMPL)
        if impl != "auto":
            os.environ[ENV_IMPL] = impl
        try:
            return attend(*args, **kwargs)
        finally:
            if before is None:
                os.environ.pop(ENV_IMPL, None)
            else:
                os.environ[ENV_IMPL] = before

    return call


def copy_mha(ours, theirs) -> None:
    """Copy a torch.nn.MultiheadAttention's weights into an attnkit MultiHeadAttention."""
    wq, wk, wv = theirs.in_proj_weight.chunk(3)
    bq, bk, bv = theirs.in_proj_bias.chunk(3)
    for proj, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
        proj.weight.copy_(w)
        proj.bias.copy_(b)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


def copy_block(ours, theirs) -> None:
    """Copy a torch.nn Transformer encoder/decoder layer's weights into attnkit's block."""
    with torch.no_grad():
        copy_mha(ours.self_attn, theirs.self_attn)
        ours.linear1.load_state_dict(theirs.linear1.state_dict())
        ours.linear2.load_state_dict(theirs.linear2.state_dict())
        ours.norm1.load_state_dict(theirs.norm1.state_dict())
        if hasattr(theirs, "multihead_attn"):
            copy_mha(ours.cross_attn, theirs.multihead_attn)
            ours.norm2.load_state_dict(theirs.norm2.state_dict())
            ours.norm_ff.load_state_dict(theirs.norm3.state_dict())
        else:
            ours.norm_ff.load_state_dict(theirs.norm2.state_dict())


# a few verses of Genesis 1 (World English Bible; Reina-Valera 1909), the translation fixtures
VERSES_EN = [
    "In the beginning, God created the heavens and the earth.",
    "The earth was formless and empty.",
    "God said, Let there be light, and there was light.",
    "God saw the light, and saw that it was good.",
]
VERSES_ES = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y la tierra estaba desordenada y vacía.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Y vió Dios que la luz era buena.",
]


def random_walk_bars(n: int, seed: int = 0):
    """Hourly OHLCV bars of a geometric random walk: nothing in the past predicts the next
    move. Opens are the previous close; wicks reach past the body by random amounts."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    opens = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 5e-4, (2, n)))
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + wick[0],
            "low": np.minimum(opens, close) - wick[1],
            "close": close,
            "volume": rng.integers(1, 100, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="h", name="time"),
    )


# a toy sentiment corpus: one word decides the label, the rest is filler
GOOD, BAD = ["superb", "moving", "witty"], ["dull", "tedious", "clumsy"]
FILLER = ["the", "film", "plot", "was", "a", "and", "cast", "story", "it", "quite"]


def one_cue_review(rng, good: bool) -> str:
    """3-8 filler words with one cue word (from GOOD or BAD) at a random place."""
    words = rng.choices(FILLER, k=rng.randint(3, 8))
    words.insert(rng.randrange(len(words) + 1), rng.choice(GOOD if good else BAD))
    return " ".join(words)


def write_reviews(path, n: int = 200) -> None:
    """A CSV of ``n`` tiny reviews (text, label) whose label is one word of the text: "superb"
    in the good ones, "dull" in the bad ones, among filler words."""
    import csv
    import random

    rng = random.Random(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            words = rng.choices(["the", "film", "plot", "was", "a", "cast"], k=5)
            words.insert(2, "superb" if i % 2 else "dull")
            w.writerow([" ".join(words), "good" if i % 2 else "bad"])
