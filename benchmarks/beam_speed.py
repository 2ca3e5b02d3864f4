"""Beam search a verse at a time against the batched beam search: the same translations, and
how much faster the batch is.

A trained translation checkpoint (``attnkit train translate``) translates ``--verses`` verses
sampled from its test books (or the lines of ``--input``) with a beam of ``--beam``, in batches
of ``--batch`` verses of similar length and a verse at a time, interleaved over ``--repeats``
runs on ``--threads`` threads. Prints the median wall time of each, the ratio, and whether the
translations are identical.

    python benchmarks/beam_speed.py --checkpoint runs/en-es --beam 4 --verses 200 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from attnkit.recipes import translate as recipe
from attnkit.tasks import translation as tr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--input", help="a file of source texts, one per line")
    parser.add_argument("--verses", type=int, default=200)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    run = recipe.load(opts.checkpoint)
    if opts.input:
        with open(opts.input, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()]
    else:
        texts = [s for s, _ in recipe.held_out(run)]
    texts = tr.sample(texts, opts.verses, seed=0)
    times: dict[int, list[float]] = {opts.batch: [], 1: []}
    outputs = {}
    for _ in range(opts.repeats):
        for size in times:
            start = time.perf_counter()
            done = run.task.decode_many(run.model, texts, opts.beam, batch_size=size)
            times[size].append(time.perf_counter() - start)
            outputs[size] = [ids for _, ids, _ in done]
    batched, alone = statistics.median(times[opts.batch]), statistics.median(times[1])
    print(
        f"{len(texts)} texts, beam {opts.beam}, {opts.threads} thread(s), median of {opts.repeats}"
    )
    print(f"batches of {opts.batch:<4} {batched:8.2f} s")
    print(f"one at a time   {alone:8.2f} s")
    same = sum(a == b for a, b in zip(outputs[opts.batch], outputs[1], strict=True))
    print(
        f"batched is {alone / batched:.1f}x faster; identical translations: {same} of {len(texts)}"
    )


if __name__ == "__main__":
    main()
