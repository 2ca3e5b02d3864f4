"""One training run in several launch modes: the same losses and metrics, and the time per epoch.

    python benchmarks/distributed.py                       # CPU: 1 process, 2 threads, 2 processes
    python benchmarks/distributed.py --modes cpu,cuda,torchrun-1   # on a GPU machine

Every mode trains the times task with the same data, seed and global batch; the first mode is
the reference the others are compared with (max |step loss difference| over the first 50 steps
and over all, and the final held-out metrics). Modes:

- ``cpu``: one process on the CPU, ``--threads 1``; ``cpu-2t``: the same with 2 threads;
- ``nproc-2``: ``--nproc 2`` on the CPU (gloo, 1 thread each);
- ``cuda``: one process on the GPU;
- ``torchrun-1``: one process under torchrun: a process group of one (NCCL where there is a GPU,
  else gloo) with DistributedDataParallel;
- ``nproc-2-cuda``: ``--nproc 2`` with the GPUs visible (NCCL needs one per process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CPU = {"CUDA_VISIBLE_DEVICES": ""}
MODES = {  # name: (launcher prefix, extra train flags, environment)
    "cpu": ([], ["--threads", "1", "--device", "cpu"], CPU),
    "cpu-2t": ([], ["--threads", "2", "--device", "cpu"], CPU),
    "nproc-2": ([], ["--threads", "1", "--nproc", "2"], CPU),
    "cuda": ([], ["--device", "cuda"], {}),
    "torchrun-1": (
        ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"],
        ["--threads", "1"],
        {},
    ),
    "nproc-2-cuda": ([], ["--nproc", "2"], {}),
}


def run(mode: str, args, root: Path) -> dict:
    prefix, flags, env = MODES[mode]
    out = root / mode
    train = [
        "train",
        "times",
        "--n",
        str(args.n),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        "0",
        "--patience",
        "99",
        "--out",
        str(out),
        *flags,
    ]
    cmd = [sys.executable, *prefix, "-m", "attnkit.cli", *(["--"] if prefix else []), *train]
    started = time.perf_counter()
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )
    wall = time.perf_counter() - started
    if done.returncode:
        return {
            "mode": mode,
            "error": (done.stderr.strip().splitlines() or ["?"])[-1],
            "rc": done.returncode,
        }
    history = torch.load(out / "trainer.pt", weights_only=True)["history"]
    seconds = [h["seconds"] for h in history]
    return {
        "mode": mode,
        "wall_s": wall,
        "epoch_s": [b - a for a, b in zip([0.0, *seconds], seconds, strict=False)],
        "steps": [x for h in history for x in h["step_losses"]],
        "metrics": json.loads((out / "config.json").read_text())["metrics"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--modes", default="cpu,cpu-2t,nproc-2")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(m, args, Path(tmp)) for m in modes]
    ref = results[0]
    print(
        f"times, n={args.n}, {args.epochs} epochs, global batch {args.batch_size}; "
        f"reference: {ref['mode']}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['mode']:>13}: failed (exit {r['rc']}): {r['error']}")
            continue
        line = (
            f"{r['mode']:>13}: epochs "
            + " / ".join(f"{s:.1f}" for s in r["epoch_s"])
            + f" s, {len(r['steps'])} steps, exact match {r['metrics']['exact_match']:.4f}"
        )
        if r is not ref and "steps" in ref:
            d = [abs(a - b) for a, b in zip(ref["steps"], r["steps"], strict=False)]
            line += f", max |loss diff| first 50 {max(d[:50]):.1e}, all {max(d):.1e}"
            line += ", metrics equal" if r["metrics"] == ref["metrics"] else ", metrics differ"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
