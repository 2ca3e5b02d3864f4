"""The Keras how-to's two attentions, in Keras 3 with attnkit.keras: the three-line "softmax
gate" and Raffel & Ellis's feed-forward attention inside an LSTM model, on their long-term
memory problem (attnkit.tasks.longmemory): two marked values in a long sequence, the answer
0.5 + (x1 + x2) / 4, correct within 0.04.

    python examples/keras/lstm_attention.py              # T = 50, about a minute on 2 cores
    python examples/keras/lstm_attention.py --length 100

Padded steps are masked (Keras's Masking layer) and get no attention; the pooling's weights
are drawn with attnkit.viz: they should sit on the two marked steps.

The how-to's gate, for comparison, was (Keras 2):

    attention_probs = Dense(input_dim, activation="softmax")(inputs)
    attention_mul = multiply([inputs, attention_probs])

here ``AttentionGate()(inputs)``, which also zeroes padded steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax" if importlib.util.find_spec("jax") else "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from attnkit.keras import AttentionGate, FeedForwardAttention  # noqa: E402
from attnkit.tasks.longmemory import TOLERANCE, make_batch  # noqa: E402


def data(n: int, length: int, seed: int):
    """(x (N, L, 2) zero-padded, y (N,), the two marked steps (N, 2))."""
    batch = make_batch("add", n, length, generator=torch.Generator().manual_seed(seed))
    return batch.x.numpy(), batch.y.numpy(), batch.marked.numpy()


def build(units: int = 32) -> tuple[keras.Model, keras.Model]:
    """The regression model and one on the same layers that also gives the pooling weights."""
    inputs = keras.Input((None, 2))
    masked = keras.layers.Masking(0.0)(inputs)  # padded steps are (0, 0)
    states = keras.layers.LSTM(units, return_sequences=True)(masked)
    gated = AttentionGate()(states)  # softmax(Dense(h)) * h: the how-to's three lines
    pooled, weights = FeedForwardAttention(hidden_dim=units)(gated, return_weights=True)
    y = keras.layers.Dense(1)(pooled)
    return keras.Model(inputs, y), keras.Model(inputs, [y, weights])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=50, help="T: lengths in [T, 1.1 T)")
    p.add_argument("--n", type=int, default=20_000, help="training sequences")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("keras-lstm-attention"))
    args = p.parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    x, y, _ = data(args.n, args.length, args.seed)
    hx, hy, marked = data(2_000, args.length, args.seed + 1)
    model, with_weights = build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(x, y, batch_size=100, epochs=args.epochs, verbose=2)
    pred = model.predict(hx, batch_size=500, verbose=0)[:, 0]
    accuracy = float(np.mean(np.abs(pred - hy) < TOLERANCE))
    print(
        f"held-out accuracy {accuracy:.4f} (|error| < {TOLERANCE}) on {len(hy)} sequences of "
        f"length {args.length}, Keras on {keras.backend.backend()}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    _, weights = with_weights.predict(hx[:1], verbose=0)
    steps = int((np.abs(hx[0]).sum(-1) > 0).sum())
    on_marked = float(weights[0, marked[0]].sum())
    print(f"attention on the two marked steps of the first sequence: {on_marked:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.keras")
    try:
        from attnkit.viz import save_heatmap
    except ImportError:  # the [plot] extra
        print("attnkit.viz needs the [plot] extra: no picture drawn")
        return 0
    labels = ["*" if t in marked[0] else "" for t in range(steps)]
    png = save_heatmap(
        torch.from_numpy(np.asarray(weights[:1, :steps])),
        labels,
        ["a_t"],
        args.out / "attention.png",
        title="feed-forward attention over the steps (* = the two marked ones)",
    )
    print(f"weights drawn in {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
