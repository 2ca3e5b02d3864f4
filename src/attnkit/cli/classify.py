"""``attnkit train classify``, ``attnkit explain`` and ``eval`` / ``predict`` of text
classifiers: thin wrappers around ``recipes.classify``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .arguments import path, positive_int, refuse_flags
from .errors import UserError

# train options that mean nothing to a classifier
NOT_FOR_CLASSIFY = ("n", "normalize", "context", "unknown_token", "target", "attention",
                    "direction", "model", "d_model", "heads", "layers", "label",
                    "window", "positions")  # fmt: skip


def is_classifier_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "classify"


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..models.classifier import CLASSIFIER_POOLINGS

    p.add_argument("--pooling", choices=CLASSIFIER_POOLINGS,
                   help="classify: how the words' states become one vector (default: "
                   "attention; han reads documents)")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from ..recipes import classify as recipe

    refuse_flags(args, NOT_FOR_CLASSIFY, "classify")
    settings = {"hidden_dim": args.hidden, "epochs": args.epochs, "seed": args.seed,
                "batch_size": args.batch_size, "lr": args.lr, "patience": args.patience,
                "time_limit": None if args.minutes is None else args.minutes * 60}  # fmt: skip
    pooling = args.pooling
    data = args.data
    if data is None and pooling == "han" and not args.resume:
        data = "bible-genres"  # han needs documents
    run = recipe.train(data, out=args.out, pooling=pooling, resume=args.resume,
                       overwrite=args.overwrite, threads=args.threads,
                       vocab_size=args.vocab_size, **settings)  # fmt: skip
    m = run.config["metrics"]
    print(f"validation accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} (epoch "
          f"{run.config['epoch']}); checkpoint in {args.out}")  # fmt: skip
    if not run.config["data"].get("given"):
        test = recipe.evaluate(run, recipe.held_out(run))
        print(f"test split: accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} "
              f"({test['n']} examples)")  # fmt: skip
    print(f"try: attnkit explain --checkpoint {args.out} 'a gem of a film'")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..recipes import classify as recipe
    from ..tasks.classify import read_labelled

    if args.save or args.beam != 1:
        raise UserError("--save and --beam apply to translation checkpoints")
    run = recipe.load(args.checkpoint)
    if args.data:
        corpus = read_labelled(args.data, run.task.documents)
        unknown = sorted(set(corpus.classes) - set(run.task.classes))
        if unknown:
            raise UserError(f"{args.data}: labels the model does not know: {', '.join(unknown)}")
        index = [run.task.classes.index(c) for c in corpus.classes]
        examples = [type(ex)(ex.text, index[ex.label], ex.group)
                    for ex in corpus.train + corpus.valid + corpus.test]  # fmt: skip
        what = f"every row of {args.data}"
    else:
        examples, what = recipe.held_out(run), "the test split"
    scores = recipe.evaluate(run, examples)
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{what}:")
        for key, value in scores.items():
            print(f"{key:<16}{value:.4f}" if isinstance(value, float) else f"{key:<16}{value}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..recipes import classify as recipe

    if args.data or args.last is not None or args.plot or args.beam != 1:
        raise UserError("a classifier predicts the texts given: --data, --last, --plot and "
                        "--beam do not apply (see attnkit explain for pictures)")  # fmt: skip
    if not args.text:
        raise UserError("give the text(s) to classify")
    run = recipe.load(args.checkpoint)
    probs = recipe.predict(run, list(args.text))
    classes = run.task.classes
    for text, p in zip(args.text, probs, strict=True):
        label = classes[int(p.argmax())]
        if args.json:
            print(json.dumps({"input": text, "output": label,
                              "probabilities": dict(zip(classes, map(float, p), strict=True))},
                             ensure_ascii=False))  # fmt: skip
        else:
            print(f"{text}\t{label}\t{float(p.max()):.3f}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..recipes import classify as recipe
    from ..train import read_config
    from ..viz.highlight import explanation_html, render_explanation

    if args.threads:
        torch.set_num_threads(args.threads)
    if not is_classifier_checkpoint(read_config(args.checkpoint)):
        raise UserError(f"{args.checkpoint} holds no text classifier: attnkit explain reads "
                        "the checkpoints of attnkit train classify")  # fmt: skip
    html_path = Path(args.html) if args.html else None
    if html_path is not None and html_path.is_dir():
        raise UserError(f"--html {html_path} is a directory; name an HTML file")
    run = recipe.load(args.checkpoint)
    text = args.text
    if text == "-":
        text = sys.stdin.read()
    explanation = recipe.explain(run, text, steps=args.steps)
    data = explanation.to_json()
    if args.json:
        print(json.dumps({"input": text, **data}, ensure_ascii=False))
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        print(render_explanation(data, color=color))
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(explanation_html(data, f"attnkit explain: {args.checkpoint}"),
                             encoding="utf-8")  # fmt: skip
        print(f"HTML in {html_path}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("explain", help="a classifier's prediction with its words highlighted by "
                       "attention weight and by integrated gradients")  # fmt: skip
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("text", help="the text to classify ('-': read it from standard input); a "
                   "document model cuts it into sentences")  # fmt: skip
    p.add_argument("--html", type=path, help="also write a self-contained HTML page here")
    p.add_argument("--steps", type=positive_int, default=32, help="integrated-gradients steps "
                   "(default: 32)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="highlight with terminal colours (default: when writing to a terminal)",
    )
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_explain)
