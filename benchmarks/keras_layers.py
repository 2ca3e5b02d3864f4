"""Forward + backward time of attnkit.keras's layers on each installed Keras backend against
attnkit's PyTorch layers at the same sizes, 1 thread, as a ratio per layer and backend.

    python benchmarks/keras_layers.py                 # every installed backend
    python benchmarks/keras_layers.py --backends jax --repeats 30

Each backend runs in its own process (Keras reads its backend once), and each process also
times the PyTorch layer, interleaved with the Keras one, so every ratio comes from one run.
The Keras step is what ``model.fit`` runs on that backend: compiled with ``jax.jit`` on JAX and
``tf.function`` on TensorFlow, eager on torch (Keras's torch backend does not compile by
default). The loss is sum(output * probe) and the gradients are those of every weight and of
the inputs. Medians of ``--repeats`` after 3 warm-up calls.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {"B": 16, "T": 128, "D": 64}
LAYERS = (
    "AttentionGate",
    "FeedForwardAttention",
    "SeqSelfAttention",
    "AdditiveAttention",
    "MultiplicativeAttention",
    "LocalAttention",
    "MultiHeadAttention",
)


def _one_thread(backend: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    if backend == "tensorflow":
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = "1"


def _torch_layers(d: int):
    import attnkit

    return {
        "AttentionGate": attnkit.AttentionGate(d),
        "FeedForwardAttention": attnkit.FeedForwardAttention(d, d),
        "SeqSelfAttention": attnkit.SelfAttention(d, "additive", hidden_dim=32),
        "AdditiveAttention": attnkit.AdditiveAttention(d, d, 32),
        "MultiplicativeAttention": attnkit.MultiplicativeAttention(d, d, score="general"),
        "LocalAttention": attnkit.LocalAttention(
            attnkit.MultiplicativeAttention(d, d, score="general"), 8
        ),
        "MultiHeadAttention": attnkit.MultiHeadAttention(d, 4),
    }


def _calls(name: str):
    """(torch call, keras call) of the layer on x (B, T, D): self- or cross-attention of x."""
    two = name in ("AdditiveAttention", "MultiplicativeAttention", "LocalAttention")
    if two:
        return (lambda m, x: m(x, x).context), (lambda layer, x: layer(x, x))
    if name == "MultiHeadAttention":
        return (lambda m, x: m(x, causal=True).context), (lambda layer, x: layer(x, causal=True))
    return (lambda m, x: m(x).context), (lambda layer, x: layer(x))


def _median(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _keras_step(backend: str, layer, call, x, probe):
    """fwd + bwd of the Keras layer, as model.fit would run it on ``backend``."""
    import keras

    variables = layer.trainable_variables
    if backend == "jax":
        import jax

        def loss(values, x):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return (call(layer, x) * probe).sum()

        step = jax.jit(jax.grad(loss, argnums=(0, 1)))
        values = [v.value for v in variables]
        return lambda: jax.block_until_ready(step(values, x))
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=False)
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = tf.reduce_sum(call(layer, x) * probe)
            return tape.gradient(value, [*variables, x])

        return lambda: [g.numpy() for g in step(x)]
    import torch

    xt = torch.as_tensor(x).requires_grad_(True)
    pt = torch.as_tensor(probe)

    def step():
        for v in variables:
            v.value.grad = None
        (call(layer, xt) * pt).sum().backward()

    return step


def worker(backend: str, repeats: int) -> None:
    _one_thread(backend)
    os.environ["KERAS_BACKEND"] = backend
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import keras

    from attnkit import keras as ak

    b, t, d = SIZES["B"], SIZES["T"], SIZES["D"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, d)).astype("float32")
    rows = []
    for name, module in _torch_layers(d).items():
        layer = ak.from_torch(module)
        torch_call, keras_call = _calls(name)
        probe = rng.standard_normal(tuple(keras_call(layer, x).shape)).astype("float32")
        if backend == "jax":
            import jax.numpy as jnp

            kx, kprobe = jnp.asarray(x), jnp.asarray(probe)
        elif backend == "tensorflow":
            import tensorflow as tf

            kx, kprobe = tf.constant(x), tf.constant(probe)
        else:
            kx, kprobe = x, torch.as_tensor(probe)
        keras_step = _keras_step(backend, layer, keras_call, kx, kprobe)
        xt = torch.from_numpy(x).requires_grad_(True)
        pt = torch.from_numpy(probe)

        def torch_step(module=module, torch_call=torch_call, xt=xt, pt=pt):
            module.zero_grad(set_to_none=True)
            xt.grad = None
            (torch_call(module, xt) * pt).sum().backward()

        keras_times, torch_times = [], []
        for _ in range(3):  # interleaved: each side in turn, a third of the repeats each time
            keras_times.append(_median(keras_step, max(1, repeats // 3)))
            torch_times.append(_median(torch_step, max(1, repeats // 3)))
        rows.append(
            {
                "layer": name,
                "torch_ms": 1e3 * statistics.median(torch_times),
                "keras_ms": 1e3 * statistics.median(keras_times),
            }
        )
    print(json.dumps({"backend": backend, "keras": keras.__version__, "rows": rows}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="*", default=None, help="default: every installed one")
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.repeats)
        return 0
    backends = args.backends or [
        b for b in ("torch", "jax", "tensorflow") if importlib.util.find_spec(b)
    ]
    print(
        f"forward + backward, B={SIZES['B']} T={SIZES['T']} D={SIZES['D']}, 1 thread, "
        f"median of {args.repeats} (ratio = Keras time / PyTorch layer time)"
    )
    results = {}
    for backend in backends:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", backend, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"{backend}: failed\n{done.stderr[-2000:]}")
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    header = f"{'layer':24s} {'torch layer':>12s}" + "".join(
        f" {b + ' (Keras)':>16s} {'ratio':>6s}" for b in results
    )
    print(header)
    for i, name in enumerate(LAYERS):
        line = f"{name:24s}"
        first = next(iter(results.values()))["rows"][i]["torch_ms"] if results else 0.0
        line += f" {first:10.2f}ms"
        for r in results.values():
            row = r["rows"][i]
            line += f" {row['keras_ms']:14.2f}ms {row['keras_ms'] / row['torch_ms']:6.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
