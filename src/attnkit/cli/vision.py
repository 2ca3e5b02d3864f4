"""``attnkit train vision`` / ``train caption``, and ``eval`` / ``show`` of image classifiers
and captioners: thin wrappers around ``recipes.vision`` and ``recipes.caption``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .arguments import positive_float, refuse_flags
from .classify import NOT_FOR_CLASSIFY
from .errors import UserError

# train options that mean nothing to an image classifier, or to the captioner
NOT_FOR_VISION = (*NOT_FOR_CLASSIFY, "vocab_size", "hidden")
NOT_FOR_CAPTION = (*(n for n in NOT_FOR_CLASSIFY if n != "n"), "vocab_size")


def is_vision_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "vision"


def is_caption_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "caption"


def add_train_args(p: argparse.ArgumentParser) -> None:
    from ..models.vision import BLOCKS
    from ..recipes.caption import LAYOUTS

    p.add_argument("--block", choices=BLOCKS, help="vision, caption: the attention block of "
                   "every CNN stage: none (default), se (squeeze-and-excitation) or "
                   "cbam")  # fmt: skip
    p.add_argument("--layout", choices=LAYOUTS, help="caption: digits side by side (row, the "
                   "default) or in a 2 x 2 grid")  # fmt: skip
    p.add_argument("--doubly-stochastic", type=positive_float, metavar="LAMBDA",
                   help="caption: weight of the regulariser that asks every image region to be "
                   "attended about once over a caption (Xu et al. 2015, eq. 14; default "
                   "off)")  # fmt: skip


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


def cmd_eval(args: argparse.Namespace, captioner: bool = False) -> int:
    """An image classifier's, or a captioner's, scores on its test images."""
    from ..recipes import caption, vision

    if args.data or args.save or args.beam != 1:
        raise UserError(f"{'a captioner' if captioner else 'an image classifier'} is scored on "
                        "its test images: --data, --save and --beam do not apply")  # fmt: skip
    recipe = caption if captioner else vision
    scores = recipe.evaluate(recipe.load(args.checkpoint))
    if args.json:
        print(json.dumps(scores))
    else:
        for key, value in scores.items():
            print(f"{key:<20}{value:.4f}" if isinstance(value, float) else f"{key:<20}{value}")
    return 0


def cmd_show(args: argparse.Namespace, png: Path) -> int:
    """``text`` is the index of a test image: its prediction, and its maps as a PNG."""
    from ..recipes import vision as recipe
    from ..tasks.images import test_index
    from ..viz.images import save_image_maps

    run = recipe.load(args.checkpoint)
    test = recipe.dataset(run.config["task"]["data"]).test
    i = test_index(args.text, len(test), "an image classifier")
    probs, stages = recipe.maps(run, test.x[i : i + 1])
    classes = run.config["task"]["classes"]
    label, truth = classes[int(probs[0].argmax())], classes[int(test.y[i])]
    one = [(None if c is None else c[0], None if s is None else s[0]) for c, s in stages]
    title = f"test image {i}: predicted {label} ({float(probs[0].max()):.2f}), truth {truth}"
    path = save_image_maps(test.x[i], one, png, title)
    print(title)
    print(f"maps written to {path}")
    return 0


def cmd_train_caption(args: argparse.Namespace) -> int:
    from ..recipes import caption as recipe

    refuse_flags(args, NOT_FOR_CAPTION, "caption")
    if args.data:
        raise UserError("the captioner composes its images from the digits: --data does not "
                        "apply")  # fmt: skip
    settings = {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
                "lr": args.lr, "patience": args.patience, "hidden_dim": args.hidden,
                "doubly_stochastic": args.doubly_stochastic,
                "time_limit": None if args.minutes is None else args.minutes * 60}  # fmt: skip
    run = recipe.train(args.layout, out=args.out, n=args.n, block=args.block,
                       resume=args.resume, overwrite=args.overwrite, threads=args.threads,
                       **settings)  # fmt: skip
    test = recipe.evaluate(run)
    print(f"validation exact match {run.config['metrics']['exact_match']:.4f} (epoch "
          f"{run.config['epoch']}); test: exact match {test['exact_match']:.4f}, attention in "
          f"the digit's box {test['box_share']:.3f} (uniform {test['box_share_uniform']:.3f}) "
          f"on {test['n']} images of unseen strings; checkpoint in {args.out}")  # fmt: skip
    print(f"try: attnkit show --checkpoint {args.out} 0")
    return 0


def cmd_show_caption(args: argparse.Namespace, png: Path) -> int:
    """``text`` is the index of a test image: its caption, and one panel per output token
    with the attention drawn over the image."""
    from ..recipes import caption as recipe
    from ..tasks.images import test_index
    from ..viz.images import save_caption_maps

    run = recipe.load(args.checkpoint)
    test = recipe.test_data(run)
    i = test_index(args.text, len(test), "a captioner")
    ((text, tokens, weights),) = recipe.caption(run, test.captions.x[i], beam=args.beam)
    truth = test.captions.strings[i]
    title = f"test image {i}: wrote {text!r}, truth {truth!r}"
    path = save_caption_maps(test.captions.x[i], weights, tokens, png, title)
    print(title)
    print(f"{len(tokens)} panels written to {path}")
    return 0
