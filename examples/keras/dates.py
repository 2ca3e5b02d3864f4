"""Human-written dates (or times) to ISO 8601 in Keras: the date-translation encoder-decoder of
the Keras attention tutorials, written with attnkit.keras's Bahdanau attention, trained on
attnkit's own data, its attention drawn with attnkit.viz from the Keras model's weights.

    python examples/keras/dates.py                 # dates: 99.6% in about 2 min on 2 cores (JAX)
    python examples/keras/dates.py --task times    # "quarter past seven pm" -> 19:15
    KERAS_BACKEND=torch python examples/keras/dates.py --epochs 2 --n 2000   # any backend

The model: characters -> Embedding(mask_zero) -> bidirectional GRU (the keys); the target so
far -> GRU started from the encoder's last states (the queries); AdditiveAttention(queries,
keys) -> the context of each output character; [query; context] -> Dense -> softmax. Greedy
decoding feeds each predicted character back in. Sources are batched by length (two widths),
so the encoder does not run over padding up to the longest date of all.
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

from attnkit import tasks  # noqa: E402
from attnkit.keras import AdditiveAttention  # noqa: E402

PAD, START, END = 0, 1, 2  # ids before the characters


class Chars:
    """Characters <-> ids (0 padding, 1 start, 2 end)."""

    def __init__(self, texts: list[str]) -> None:
        self.chars = sorted({c for t in texts for c in t})
        self.ids = {c: i + 3 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 3

    def encode(self, texts: list[str], length: int, end: bool = False) -> np.ndarray:
        """(N, length) ids, right-padded with 0; unknown characters are dropped."""
        out = np.zeros((len(texts), length), "int32")
        for row, text in enumerate(texts):
            ids = [self.ids[c] for c in text if c in self.ids] + ([END] if end else [])
            ids = ids[:length]
            out[row, : len(ids)] = ids
        return out

    def labels(self, ids: np.ndarray) -> list[str]:
        """A label for each decoded id up to and with the end ("</s>"; "?" for padding)."""
        out = []
        for i in ids:
            out.append("</s>" if i == END else self.chars[i - 3] if i >= 3 else "?")
            if i == END:
                break
        return out

    def decode(self, ids: np.ndarray) -> str:
        chars = []
        for i in ids:
            if i == END:
                break
            if i >= 3:
                chars.append(self.chars[i - 3])
        return "".join(chars)


def build(src_vocab: int, tgt_vocab: int, units: int = 64) -> tuple[keras.Model, keras.Model]:
    """The trained model (source, target so far) -> next-character probabilities, and one on
    the same layers that also outputs the attention weights (B, T_out, S_in)."""
    src = keras.Input((None,), dtype="int32", name="source")
    prev = keras.Input((None,), dtype="int32", name="target_so_far")
    embedded = keras.layers.Embedding(src_vocab, units, mask_zero=True)(src)
    keys, forward, backward = keras.layers.Bidirectional(
        keras.layers.GRU(units, return_sequences=True, return_state=True)
    )(embedded)
    state = keras.layers.Concatenate()([forward, backward])
    queries = keras.layers.GRU(2 * units, return_sequences=True)(
        keras.layers.Embedding(tgt_vocab, units)(prev), initial_state=state
    )
    context, weights = AdditiveAttention(units, name="attention")(
        queries, keys, return_weights=True
    )  # the keys' padding mask comes from the Embedding, through the LSTM
    hidden = keras.layers.Dense(2 * units, activation="tanh")(
        keras.layers.Concatenate()([queries, context])
    )
    probs = keras.layers.Dense(tgt_vocab, activation="softmax")(hidden)
    return keras.Model([src, prev], probs), keras.Model([src, prev], [probs, weights])


class Batches(keras.utils.PyDataset):
    """Training batches of sources of about one length: each padded to its bucket's width
    (a few widths, so JAX or TensorFlow compiles the step a few times, not once a batch)
    instead of the longest source of all, which costs the encoder three times the work."""

    def __init__(self, src, prev, out, batch_size: int, seed: int, widths=(16,)):
        super().__init__()
        self.src, self.prev, self.out, self.batch_size = src, prev, out, batch_size
        lengths = (src != PAD).sum(1)
        edges = [w for w in widths if w < src.shape[1]] + [src.shape[1]]
        self.buckets = [
            (np.flatnonzero((lengths <= w) & (lengths > lo)), w)
            for lo, w in zip([0, *edges[:-1]], edges, strict=True)
        ]
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        self.batches = []
        for rows, width in self.buckets:
            rows = self.rng.permutation(rows)
            for i in range(0, len(rows), self.batch_size):
                self.batches.append((rows[i : i + self.batch_size], width))
        self.rng.shuffle(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        rows, width = self.batches[i]
        return (self.src[rows, :width], self.prev[rows]), self.out[rows]


def greedy(model: keras.Model, src: np.ndarray, length: int, batch: int = 4096):
    """The predicted ids (N, length) and, from a model with weights, the weights."""
    prev = np.zeros((len(src), length), "int32")
    prev[:, 0] = START
    for t in range(length):
        out = model.predict([src, prev], batch_size=batch, verbose=0)
        probs = out[0] if isinstance(out, list) else out
        if t + 1 < length:
            prev[:, t + 1] = probs[:, t].argmax(-1)
    return np.concatenate([prev[:, 1:], probs[:, -1:].argmax(-1)], axis=1), out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=("dates", "times"), default="dates")
    p.add_argument("--n", type=int, default=20_000, help="pairs generated (default 20,000)")
    p.add_argument("--held-out", type=int, default=2_000, help="of them, held out")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("keras-dates"), help="model and heatmap")
    args = p.parse_args(argv)
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)

    task = tasks.get(args.task)
    normalize = tasks.Normalizer(task.normalization).apply
    pairs = [(normalize(a), b) for a, b in task.generate(args.n, args.seed)]
    train, held = tasks.split(pairs, args.held_out / len(pairs), args.seed)
    src_chars = Chars([a for a, _ in train])
    tgt_chars = Chars([b for _, b in train])
    s_len = max(len(a) for a, _ in pairs)
    t_len = max(len(b) for _, b in pairs) + 1  # and the end

    def arrays(rows):
        src = src_chars.encode([a for a, _ in rows], s_len)
        out = tgt_chars.encode([b for _, b in rows], t_len, end=True)
        prev = np.concatenate([np.full((len(rows), 1), START, "int32"), out[:, :-1]], axis=1)
        return src, prev, out

    src, prev, out = arrays(train)
    model, with_weights = build(len(src_chars), len(tgt_chars))
    batches = Batches(src, prev, out, args.batch_size, args.seed)
    steps = args.epochs * len(batches)
    schedule = keras.optimizers.schedules.CosineDecay(5e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    print(
        f"{len(train)} training pairs, {len(held)} held out, Keras {keras.__version__} on "
        f"{keras.backend.backend()}",
        flush=True,
    )
    model.fit(batches, epochs=args.epochs, verbose=2)
    trained = time.perf_counter() - start

    h_src = arrays(held)[0]
    pred, _ = greedy(model, h_src, t_len)
    got = [tgt_chars.decode(row) for row in pred]
    em = float(np.mean([g == b for g, (_, b) in zip(got, held, strict=True)]))
    total = time.perf_counter() - start
    print(
        f"held-out exact match {em:.4f} on {len(held)} pairs; trained in {trained:.0f} s, "
        f"{total:.0f} s in all"
    )
    for (a, b), g in list(zip(held, got, strict=True))[:5]:
        print(f"  {a!r} -> {g!r}" + ("" if g == b else f"  (want {b!r})"))

    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.keras")
    example = h_src[:1]
    ids, (_, weights) = greedy(with_weights, example, t_len)
    text, answer = held[0][0], tgt_chars.decode(ids[0])
    labels = tgt_chars.labels(ids[0])  # one a decoded step, up to the end
    seen = src_chars.decode(example[0])  # the source as the model read it (known characters)
    try:
        import torch

        from attnkit.viz import save_heatmap
    except ImportError:  # the [plot] extra
        print("attnkit.viz needs the [plot] extra: no heatmap drawn")
        return 0
    png = save_heatmap(
        torch.from_numpy(np.asarray(weights[0, : len(labels), : len(seen)])),
        list(seen),
        labels,
        args.out / "attention.png",
        title=f"{text!r} -> {answer!r} (Keras on {keras.backend.backend()})",
    )
    print(f"model in {args.out / 'model.keras'}; attention of {text!r} in {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
