"""The classic Keras attention tutorial's model, rebuilt from its description, run in its own
environment (Keras 3 on the torch backend) by benchmarks/tutorial_speed.py.

Encoder: a bidirectional LSTM of 32 units per direction over one-hot characters. At each of the
Ty output steps, attention scores every input position with Dense(8, tanh) -> Dense(1, relu)
over [encoder state; previous decoder state], softmax over positions, and feeds the context to
an LSTM of 64 units whose state carries over; Dense(softmax) writes the character. Adam at 0.05
with inverse-time decay (0.01 per step), batch 100, 30 epochs, one cross-entropy per step.

    python tutorial_model.py DATA.json HELD.json THREADS  ->  prints {"exact_match": ...}
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import layers  # noqa: E402


def encode(pairs, src_chars, tgt_chars, tx, ty):
    s_index = {c: i for i, c in enumerate(src_chars)}
    t_index = {c: i for i, c in enumerate(tgt_chars)}
    x = np.zeros((len(pairs), tx, len(src_chars)), dtype="float32")
    y = np.zeros((ty, len(pairs), len(tgt_chars)), dtype="float32")
    for n, (s, t) in enumerate(pairs):
        for i, c in enumerate(s[:tx]):
            x[n, i, s_index.get(c, 0)] = 1.0
        for i, c in enumerate(t[:ty]):
            y[i, n, t_index[c]] = 1.0
    return x, list(y)


def build(tx, ty, n_src, n_tgt):
    repeat = layers.RepeatVector(tx)
    concat = layers.Concatenate(axis=-1)
    dense1 = layers.Dense(8, activation="tanh")
    dense2 = layers.Dense(1, activation="relu")
    over_time = layers.Softmax(axis=1)
    dot = layers.Dot(axes=1)
    post = layers.LSTM(64, return_state=True)
    output = layers.Dense(n_tgt, activation="softmax")

    x = keras.Input((tx, n_src))
    s0, c0 = keras.Input((64,)), keras.Input((64,))
    a = layers.Bidirectional(layers.LSTM(32, return_sequences=True))(x)
    s, c, outputs = s0, c0, []
    for _ in range(ty):
        e = dense2(dense1(concat([a, repeat(s)])))
        context = dot([over_time(e), a])
        s, _, c = post(context, initial_state=[s, c])
        outputs.append(output(s))
    return keras.Model([x, s0, c0], outputs)


def main():
    train, held = (json.loads(Path(p).read_text()) for p in sys.argv[1:3])
    torch.set_num_threads(int(sys.argv[3]))
    src_chars = ["<unk>"] + sorted({c for s, _ in train for c in s})
    tgt_chars = sorted({c for _, t in train + held for c in t})
    tx, ty = max(len(s) for s, _ in train + held), max(len(t) for _, t in train + held)
    model = build(tx, ty, len(src_chars), len(tgt_chars))
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.05, decay_steps=1, decay_rate=0.01)
    model.compile(keras.optimizers.Adam(schedule), loss="categorical_crossentropy")
    x, y = encode(train, src_chars, tgt_chars, tx, ty)
    zeros = np.zeros((len(train), 64), dtype="float32")
    model.fit([x, zeros, zeros], y, epochs=30, batch_size=100, verbose=0)
    hx, hy = encode(held, src_chars, tgt_chars, tx, ty)
    hz = np.zeros((len(held), 64), dtype="float32")
    pred = np.stack([p.argmax(-1) for p in model.predict([hx, hz, hz], verbose=0)], 1)
    want = np.stack([t.argmax(-1) for t in hy], 1)
    print(json.dumps({"exact_match": float((pred == want).all(1).mean())}))


if __name__ == "__main__":
    main()
