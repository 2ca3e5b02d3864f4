"""``attnkit demo``: train the dates model and show what it looks at."""

from __future__ import annotations

import time
from pathlib import Path

from ..recipes import seq2seq as recipe
from ..viz import render_weights, save_heatmap
from ..viz.terminal import ljust, width
from .arguments import count, path, positive_int

DEMO_INPUTS = [
    "Wednesday, September 14, 1994",
    "14.09.94",
    "3 mars 2021",
    "1 января 2000 г.",
    "2021年3月14日",
    "sábado, 4 de julio de 1998",
    "5. Mai 1999",
    "DEC 25, 2049",
    "7/4/76",
    "the 3rd of March, 2021",
    "Sept. 14th 1994",
    "14 sept 1994",
    "1994-09-14",
]


def cmd_demo(args) -> int:
    started = time.perf_counter()
    print("Training a character-level BiGRU encoder-decoder with Bahdanau attention to read")
    print("dates in 7 locales and write them as ISO 8601 (YYYY-MM-DD).\n")
    # stop early only when held-out exact match is perfect: there is nothing left to gain
    run = recipe.train(
        "dates",
        out=args.out,
        threads=args.threads,
        epochs=args.epochs,
        seed=args.seed,
        patience=args.epochs,
        target=1.0,
        overwrite=True,  # the demo's own directory: each demo replaces the last
    )
    m = run.config["metrics"]  # the held-out evaluation of the best epoch, as saved
    print(
        f"\nheld-out: {m['n']} dates, exact match {m['exact_match']:.2%}, "
        f"character accuracy {m['char_accuracy']:.2%}\n"
    )
    examples = [t for t in DEMO_INPUTS if not run.task.input_problem(t)]
    examples += [s for s, _ in run.held_out.pairs[:4]]
    results = run.task.predict(run.model, examples)
    columns = max(width(t) for t in examples)
    print(f"{ljust('input', columns)}  prediction")
    out_dir = Path(args.out)
    for i, (text, (out, weights)) in enumerate(zip(examples, results, strict=True)):
        print(f"{ljust(text, columns)}  {out}")
        save_heatmap(
            weights,
            run.task.normalize(text),
            recipe.output_labels(out, weights),
            out_dir / f"example_{i:02d}.png",
            title=text,
        )
    text, (out, weights) = examples[0], results[0]
    print(f"\nwhere each output character looked, for {text!r}:\n")
    print(
        render_weights(weights, recipe.output_labels(out, weights), list(run.task.normalize(text)))
    )
    print(
        f"\nheatmaps in {out_dir}/example_*.png; checkpoint in {out_dir} "
        f"({time.perf_counter() - started:.0f}s)"
    )
    print(f"try: attnkit predict --checkpoint {out_dir} '4 July 1976'")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="train the dates model and show what it looks at")
    p.add_argument("--out", default="runs/demo", type=path)
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_demo)
