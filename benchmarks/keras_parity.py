"""How far attnkit.keras's layers are from attnkit's PyTorch layers with converted weights, per
layer and backend: the largest absolute difference of the output, of the weights and of the
gradients of every weight (loss = sum(output * probe)), on random inputs with padded keys.

    python benchmarks/keras_parity.py                 # every installed backend, float32
    python benchmarks/keras_parity.py --float64       # JAX with x64 on (torch backend rounds)

Each backend runs in its own process (Keras reads its backend once).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import subprocess
import sys

B, T, S, D, DK = 4, 12, 15, 16, 12


def _cases(attnkit):
    qkv, seq, mha = "qkv", "seq", "mha"
    return {
        "AttentionGate": (attnkit.AttentionGate(D), seq),
        "FeedForwardAttention": (attnkit.FeedForwardAttention(D, 8), seq),
        "SeqSelfAttention additive": (attnkit.SelfAttention(D, "additive", window=(3, 1)), seq),
        "SeqSelfAttention multiplicative": (
            attnkit.SelfAttention(D, "multiplicative", causal=True),
            seq,
        ),
        "AdditiveAttention": (attnkit.AdditiveAttention(D, DK, 8, bias=True), qkv),
        "MultiplicativeAttention general": (
            attnkit.MultiplicativeAttention(D, DK, score="general"),
            qkv,
        ),
        "LocalAttention local-m": (
            attnkit.LocalAttention(attnkit.MultiplicativeAttention(D, DK, score="general"), 3),
            qkv,
        ),
        "LocalAttention local-p": (
            attnkit.LocalAttention(attnkit.AdditiveAttention(D, DK, 8), 3, mode="predictive"),
            qkv,
        ),
        "MultiHeadAttention causal GQA": (attnkit.MultiHeadAttention(D, 4, kv_heads=2), mha),
        "MultiHeadAttention cross": (attnkit.MultiHeadAttention(D, 4, kdim=DK, vdim=DK), mha),
    }


def worker(backend: str, float64: bool) -> None:
    import numpy as np
    import torch
    from keras import ops

    import attnkit
    from attnkit import keras as ak

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "keras"))
    from test_keras_layers import _grads  # the backend's own autodiff, as the tests use it

    dtype = "float64" if float64 else "float32"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    k = rng.standard_normal((B, S, DK)).astype(dtype)
    lengths = np.array([S, 9, 4, 1])
    keys_mask = np.arange(S)[None] < lengths[:, None]
    steps = np.array([T, 8, 3, 1])
    steps_mask = np.arange(T)[None] < steps[:, None]
    tx, tk = torch.from_numpy(x), torch.from_numpy(k)
    rows = []
    for name, (module, kind) in _cases(attnkit).items():
        module = module.double() if float64 else module
        module.eval()
        layer = ak.from_torch(module)
        if kind == "qkv":

            def run_keras(layer=layer):
                return layer(x, k, keys_mask=keys_mask, return_weights=True)

            def run_torch(module=module):
                return module(tx, tk, lengths=torch.from_numpy(lengths), return_weights=True)
        elif kind == "seq":

            def run_keras(layer=layer):
                return layer(x, mask=steps_mask, return_weights=True)

            def run_torch(module=module):
                return module(tx, lengths=torch.from_numpy(steps), return_weights=True)
        else:
            cross = "cross" in name

            def run_keras(layer=layer, cross=cross):
                if cross:
                    return layer(x, k, k, key_mask=keys_mask, return_weights=True)
                return layer(x, mask=steps_mask, causal=True, return_weights=True)

            def run_torch(module=module, cross=cross):
                if cross:
                    return module(
                        tx, tk, tk, lengths=torch.from_numpy(lengths), return_weights=True
                    )
                return module(tx, lengths=torch.from_numpy(steps), causal=True, return_weights=True)

        got, want = run_keras(), run_torch()
        out_diff = float(
            np.abs(np.asarray(ops.convert_to_numpy(got[0])) - want.context.detach().numpy()).max()
        )
        w_diff = float(
            np.abs(np.asarray(ops.convert_to_numpy(got[1])) - want.weights.detach().numpy()).max()
        )
        probe = rng.standard_normal(tuple(got[0].shape)).astype(dtype)
        grads = _grads(
            layer,
            lambda run_keras=run_keras, probe=probe: ops.sum(
                run_keras()[0] * ops.convert_to_tensor(probe)
            ),
        )
        (run_torch().context * torch.from_numpy(probe)).sum().backward()
        as_weights = copy.deepcopy(module)
        for p, g in zip(as_weights.parameters(), module.parameters(), strict=True):
            p.data = g.grad.clone()
        want_grads = [
            np.asarray(ops.convert_to_numpy(v))
            for v in ak.from_torch(as_weights).trainable_variables
        ]
        g_diff = max(float(np.abs(a - b).max()) for a, b in zip(grads, want_grads, strict=True))
        rows.append({"layer": name, "output": out_diff, "weights": w_diff, "gradients": g_diff})
    print(json.dumps({"backend": backend, "dtype": dtype, "rows": rows}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--float64", action="store_true", help="float64 on JAX with x64 on")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.float64)
        return 0
    if args.float64:
        runs = [("jax", True)]
    else:
        runs = [(b, False) for b in ("torch", "jax", "tensorflow") if importlib.util.find_spec(b)]
    results = []
    for backend, f64 in runs:
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_ENABLE_X64": "1" if f64 else "0"}
        cmd = [sys.executable, __file__, "--worker", backend, *(["--float64"] if f64 else [])]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{backend}: failed\n{done.stderr[-2000:]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for r in results:
        print(f"\n{r['backend']} ({r['dtype']}): largest |Keras - PyTorch|")
        print(f"{'layer':34s} {'output':>10s} {'weights':>10s} {'gradients':>10s}")
        for row in r["rows"]:
            print(
                f"{row['layer']:34s} {row['output']:10.2e} {row['weights']:10.2e} "
                f"{row['gradients']:10.2e}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
