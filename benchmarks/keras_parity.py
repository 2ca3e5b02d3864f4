"""How far attnkit.keras's layers are from attnkit's PyTorch layers with converted weights, per
layer and backend: the largest absolute difference of the output, of the weights and of the
gradients of every weight (loss = sum(output * probe)), on the cases and padded inputs of
tests/keras/test_keras_layers.py (B=3, T=6, S=7, D=8).

    python benchmarks/keras_parity.py                 # every installed backend, float32
    python benchmarks/keras_parity.py --float64       # JAX with x64 on (torch backend rounds)

Each backend runs in its own process (Keras reads its backend once).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys


def worker(float64: bool) -> None:
    """Every case of the layer tests (their torch layers, calls and padded data)."""
    import numpy as np
    from keras import ops

    from attnkit import keras as ak

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "keras"))
    from test_keras_layers import BACKEND, CASES, gradients, make_data

    dtype = "float64" if float64 else "float32"
    data = make_data(dtype)
    rows = []
    for name, case in CASES.items():
        module, run_torch, run_keras = case()
        module = module.double() if float64 else module
        got, want = run_keras(ak.from_torch(module), data), run_torch(data)
        diffs = [
            float(np.abs(np.asarray(ops.convert_to_numpy(g)) - w.detach().numpy()).max())
            for g, w in ((got[0], want.context), (got[1], want.weights))
        ]
        module.zero_grad(set_to_none=True)
        ours, theirs = gradients(module, run_torch, run_keras, data)
        grad = max(float(np.abs(g - w).max()) for g, w in zip(ours, theirs, strict=True))
        rows.append({"layer": name, "output": diffs[0], "weights": diffs[1], "gradients": grad})
    print(json.dumps({"backend": BACKEND, "dtype": dtype, "rows": rows}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--float64", action="store_true", help="float64 on JAX with x64 on")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.float64)
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
        print(f"{'layer':40s} {'output':>10s} {'weights':>10s} {'gradients':>10s}")
        for row in r["rows"]:
            print(
                f"{row['layer']:40s} {row['output']:10.2e} {row['weights']:10.2e} "
                f"{row['gradients']:10.2e}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
