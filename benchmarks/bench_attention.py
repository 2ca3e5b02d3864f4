"""Speed of ``attnkit.attend`` against torch SDPA and a naive reference, in one run.

Reports the median of ``--repeats`` timings for each (threads, T, path) and the ratio to
SDPA measured in the same run, so machine noise largely cancels.

    python benchmarks/bench_attention.py --sizes 128 512 1024 --threads 1 2
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

import attnkit as ak
from attnkit.bench.attention import median_seconds


def naive(q, k, v):
    """softmax(q k^T / sqrt(D)) v, materialised."""
    w = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
    return w @ v


def paths_for(q, k, v) -> dict:
    """The timed calls, causal self-attention on (B, H, T, D) inputs."""
    return {
        "torch sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "ak.attend auto": lambda: ak.attend(q, k, v, causal=True),
        "ak.attend eager": lambda: ak.attend(q, k, v, causal=True, impl="eager"),
        "ak.attend +weights": lambda: ak.attend(
            q, k, v, causal=True, impl="sdpa", return_weights=True
        ),
        "naive (no mask)": lambda: naive(q, k, v),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()

    rows = []
    print(f"{'threads':>7} {'T':>6} {'path':<22} {'median ms':>10} {'vs sdpa':>8}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for t in args.sizes:
            q, k, v = (torch.randn(args.batch, args.heads, t, args.dim) for _ in range(3))
            paths = paths_for(q, k, v)
            with torch.inference_mode():
                timed = {name: median_seconds(fn, args.repeats) for name, fn in paths.items()}
            base = timed["torch sdpa"]
            for name, sec in timed.items():
                rows.append(dict(threads=threads, T=t, path=name, median_s=sec, ratio=sec / base))
                print(f"{threads:>7} {t:>6} {name:<22} {sec * 1e3:>10.2f} {sec / base:>7.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
