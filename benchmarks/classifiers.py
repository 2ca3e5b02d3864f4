"""Text classifiers by pooling against a TF-IDF + logistic regression baseline, on one corpus.

For each pooling: train with the recipe's defaults (the best epoch by validation macro-F1),
score the held-out test split (accuracy, macro-F1), note the training time, and for poolings
with a weight per token the rank correlation between attention weights and integrated-gradients
attributions over a fixed sample of test examples. Prints a Markdown table and writes JSON.

    python benchmarks/classifiers.py --corpus rotten-tomatoes --threads 1
    python benchmarks/classifiers.py --corpus bible-genres --threads 1 --poolings han,attention,mean
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from attnkit.recipes import classify as recipe


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--corpus", default="rotten-tomatoes", help="rotten-tomatoes, bible-genres or a CSV file"
    )
    p.add_argument("--poolings", help="comma-separated (default: every one the corpus admits)")
    p.add_argument("--epochs", type=int, help="the schedule's length (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--explain",
        type=int,
        default=500,
        help="test examples sampled for the attention-attribution correlation (default 500)",
    )
    p.add_argument("--out", default="benchmarks/out", help="directory for the JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    documents = recipe.corpus_of(args.corpus, documents=True).documents
    allowed = [q for q in recipe.POOLINGS if q != "han" or documents]
    poolings = args.poolings.split(",") if args.poolings else allowed
    unknown = [q for q in poolings if q not in allowed]
    if unknown:
        p.error(f"poolings {unknown} do not apply; choose from {allowed}")

    rows = []
    flat = recipe.corpus_of(args.corpus, documents=False)
    base = recipe.baseline(flat)
    rows.append({"model": "tf-idf + logistic regression", **base})
    print(f"baseline: {base}", file=sys.stderr)
    for pooling in poolings:
        corpus = recipe.corpus_of(args.corpus, documents=pooling == "han")
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            settings = {"seed": args.seed} | ({"epochs": args.epochs} if args.epochs else {})
            run = recipe.train(
                out=out,
                pooling=pooling,
                corpus=corpus,
                progress=False,
                log=lambda *a: print(*a, file=sys.stderr),
                **settings,
            )
            seconds = time.perf_counter() - started
            scores = recipe.evaluate(run, corpus.test)
            row = {
                "model": f"bi-GRU + {pooling}",
                **scores,
                "seconds": seconds,
                "epochs": len(run.config["history"]),
                "best_epoch": run.config["epoch"],
                "parameters": sum(q.numel() for q in run.model.parameters()),
            }
            if pooling in recipe.TOKEN_WEIGHTS:
                sample = random.Random(args.seed).sample(
                    corpus.test, min(args.explain, len(corpus.test))
                )
                started = time.perf_counter()
                row["agreement"] = recipe.agreement(run, sample)
                row["agreement"]["seconds"] = time.perf_counter() - started
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    name = Path(args.corpus).stem
    print(f"\n{name}: test split, {args.threads} thread(s)\n")
    print(
        "| model | accuracy | macro-F1 | train s | Spearman (attention, abs IG) mean / median "
        "| top weight in IG top 3 |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        a = r.get("agreement")
        agree = f"{a['spearman_mean']:+.3f} / {a['spearman_median']:+.3f}" if a else ""
        top = f"{a['top_in_top3']:.2f}" if a else ""
        print(
            f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['seconds']:.0f} | {agree} | {top} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"classifiers_{name}.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
