"""The Transformer against the RNN with additive attention, on the times and dates tasks.

Each model trains as ``attnkit train TASK --model seq2seq|transformer`` does (its defaults and
presets, the task's default number of pairs, the 80/20 split), stopping early only at a
perfect held-out exact match. Prints, per task and model: the best held-out exact match, the
seconds until it first reached the acceptance level (99.5% times, 99% dates; training plus the
per-epoch evaluation, not data generation), total training seconds and parameters.

    python benchmarks/transformer_vs_rnn.py --threads 2 --out runs/transformer_vs_rnn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from attnkit.recipes import seq2seq as recipe

LEVEL = {"times": 0.995, "dates": 0.99}


def one(task: str, model: str, out: Path, threads: int, seed: int) -> dict:
    run = recipe.train(
        task,
        out=out,
        model=model,
        threads=threads,
        overwrite=True,
        seed=seed,
        target=1.0,
        progress=False,
    )
    history = run.config["history"]
    reached = [h["seconds"] for h in history if h["exact_match"] >= LEVEL[task]]
    return {
        "task": task,
        "model": model,
        "exact_match": max(h["exact_match"] for h in history),
        "seconds_to_level": reached[0] if reached else None,
        "seconds": history[-1]["seconds"],
        "epochs": len(history),
        "params": sum(p.numel() for p in run.model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=list(LEVEL), choices=list(LEVEL))
    parser.add_argument(
        "--models", nargs="+", default=["seq2seq", "transformer"], choices=recipe.MODELS
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/transformer_vs_rnn")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    rows = []
    for task in opts.tasks:
        for model in opts.models:
            rows.append(
                one(task, model, Path(opts.out) / f"{task}-{model}", opts.threads, opts.seed)
            )
            r = rows[-1]
            print(f"done {task} {model}: {r['exact_match']:.4f} in {r['seconds']:.0f}s", flush=True)
    print(f"\n{opts.threads} thread(s), seed {opts.seed}; level: 99.5% times, 99% dates")
    print(
        f"{'task':<7}{'model':<13}{'exact':>8}{'s to level':>12}{'seconds':>9}{'epochs':>8}"
        f"{'params':>10}"
    )
    for r in rows:
        level = "-" if r["seconds_to_level"] is None else f"{r['seconds_to_level']:.0f}"
        print(
            f"{r['task']:<7}{r['model']:<13}{r['exact_match']:>8.4f}{level:>12}"
            f"{r['seconds']:>9.0f}{r['epochs']:>8}{r['params']:>10,}"
        )
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    (Path(opts.out) / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
