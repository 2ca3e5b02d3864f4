"""Decoder-only generation with and without the KV cache: same tokens, how much faster.

An untrained model (the cost does not depend on the weights) of d_model 256, 4 layers, 4 heads
generates ``--tokens`` tokens greedily after a short prompt, once reusing each layer's cached
keys and values, once running the whole sequence again for every token. Prints the median
wall time of each over ``--repeats`` runs (interleaved), the ratio, and whether the tokens are
identical.

    python benchmarks/generate_speed.py --threads 1 --tokens 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from attnkit.models import DecoderOnly, DecoderOnlyConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    cfg = DecoderOnlyConfig(
        vocab_size=96,
        d_model=opts.d_model,
        num_heads=opts.heads,
        layers=opts.layers,
        max_len=opts.tokens + 16,
    )
    model = DecoderOnly(cfg).eval()
    prompt = torch.randint(3, 96, (1, 8))
    times: dict[bool, list[float]] = {True: [], False: []}
    out = {}
    for _ in range(opts.repeats):
        for cached in (True, False):
            start = time.perf_counter()
            out[cached] = model.generate(prompt, opts.tokens, use_cache=cached)
            times[cached].append(time.perf_counter() - start)
    with_cache, without = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{opts.tokens} tokens, d_model {opts.d_model}, {opts.layers} layers, {opts.heads} "
        f"heads, {opts.threads} thread(s), median of {opts.repeats}"
    )
    print(f"with the KV cache     {with_cache:7.2f} s")
    print(f"recomputing the prefix {without:6.2f} s")
    print(
        f"cache is {without / with_cache:.1f}x faster; same tokens: "
        f"{torch.equal(out[True], out[False])}"
    )


if __name__ == "__main__":
    main()
