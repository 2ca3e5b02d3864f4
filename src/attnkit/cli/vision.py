"""``attnkit train vision``, and ``eval`` / ``show`` of image classifiers: thin wrappers
around ``recipes.vision``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .arguments import refuse_flags
from .classify import NOT_FOR_CLASSIFY
from .errors import UserError

# train options that mean nothing to an image classifier
NOT_FOR_VISION = (*NOT_FOR_CLASSIFY, "vocab_size", "hidden")


def is_vision_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "vision"


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..models.vision import BLOCKS

    p.add_argument("--block", choices=BLOCKS, help="vision: the attention block of every CNN "
                   "stage: none (default), se (squeeze-and-excitation) or cbam")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from ..recipes import vision as recipe

    refuse_flags(args, NOT_FOR_VISION, "vision")
    settings = {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
                "lr": args.lr, "patience": args.patience,
                "time_limit": None if args.minutes is None else args.minutes * 60}  # fmt: skip
    run = recipe.train(args.data or "digits", out=args.out, block=args.block,
                       resume=args.resume, overwrite=args.overwrite, threads=args.threads,
                       **settings)  # fmt: skip
    test = recipe.evaluate(run)
    print(f"validation accuracy {run.config['metrics']['accuracy']:.4f} (epoch "
          f"{run.config['epoch']}); test accuracy {test['accuracy']:.4f} ({test['n']} images); "
          f"checkpoint in {args.out}")  # fmt: skip
    print(f"try: attnkit show --checkpoint {args.out} 0")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..recipes import vision as recipe

    if args.data or args.save or args.beam != 1:
        raise UserError("an image classifier is scored on its data's test split: --data, "
                        "--save and --beam do not apply")  # fmt: skip
    scores = recipe.evaluate(recipe.load(args.checkpoint))
    if args.json:
        print(json.dumps(scores))
    else:
        for key, value in scores.items():
            print(f"{key:<16}{value:.4f}" if isinstance(value, float) else f"{key:<16}{value}")
    return 0


def cmd_show(args: argparse.Namespace, png: Path) -> int:
    """``text`` is the index of a test image: its prediction, and its maps as a PNG."""
    from ..recipes import vision as recipe
    from ..viz.images import save_image_maps

    if args.layer is not None or args.head is not None or args.kind:
        raise UserError("--layer, --head and --kind are for Transformer checkpoints")
    run = recipe.load(args.checkpoint)
    test = recipe.dataset(run.config["task"]["data"]).test
    if not args.text.isdigit() or int(args.text) >= len(test):
        raise UserError(f"an image classifier shows a test image by its index: 0..{len(test) - 1}")
    i = int(args.text)
    probs, stages = recipe.maps(run, test.x[i : i + 1])
    classes = run.config["task"]["classes"]
    label, truth = classes[int(probs[0].argmax())], classes[int(test.y[i])]
    one = [(None if c is None else c[0], None if s is None else s[0]) for c, s in stages]
    title = f"test image {i}: predicted {label} ({float(probs[0].max()):.2f}), truth {truth}"
    path = save_image_maps(test.x[i], one, png, title)
    print(title)
    print(f"maps written to {path}")
    return 0
