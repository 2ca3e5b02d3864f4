"""Attention variants on the dates task, held-out exact match by input length.

Trains the same encoder-decoder with each attention kind on the same data and budget, then
buckets the held-out inputs by length. As in Bahdanau et al. 2014 (Figure 2), the model
without attention (one fixed summary of the input) should fall behind as inputs get longer.

    python benchmarks/compare_attention.py --epochs 2 --n 12000 --out benchmarks/out
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from attnkit.recipes import seq2seq as recipe

KINDS = ("none", "additive", "dot", "general", "local-p", "location", "fc-positions")
BUCKETS = ((1, 10), (11, 15), (16, 20), (21, 25), (26, 30), (31, 99))


def run(kind: str, opts) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        run = recipe.train(
            "dates",
            out=out,
            n=opts.n,
            threads=opts.threads,
            progress=False,
            log=lambda s: None,
            attention=kind,
            epochs=opts.epochs,
            seed=opts.seed,
            hidden_dim=opts.hidden,
            patience=opts.epochs,
        )
    held = run.held_out
    preds = run.task.decode_all(run.model, held)
    scores = {}
    for lo, hi in BUCKETS:
        hits = [p == t for p, (s, t) in zip(preds, held.pairs, strict=True) if lo <= len(s) <= hi]
        scores[f"{lo}-{hi}"] = (sum(hits) / len(hits)) if hits else float("nan")
    scores["all"] = sum(p == t for p, (_, t) in zip(preds, held.pairs, strict=True)) / len(preds)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=12_000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--out", default="benchmarks/out")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)

    results = {}
    cols = [f"{lo}-{hi}" for lo, hi in BUCKETS] + ["all"]
    print(f"{'attention':<13}" + "".join(f"{c:>8}" for c in cols))
    for kind in opts.kinds:
        results[kind] = run(kind, opts)
        print(f"{kind:<13}" + "".join(f"{results[kind][c]:>8.3f}" for c in cols), flush=True)

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_attention.json").write_text(json.dumps(results, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = cols[:-1]
    for kind, scores in results.items():
        ax.plot(labels, [scores[c] for c in labels], marker="o", label=kind)
    ax.set_xlabel("input length (characters)")
    ax.set_ylabel("held-out exact match")
    ax.set_title(f"dates: attention variants ({opts.epochs} epochs, {opts.n} pairs)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "compare_attention.png", dpi=120)
    print(f"table in {out / 'compare_attention.json'}, plot in {out / 'compare_attention.png'}")


if __name__ == "__main__":
    main()
