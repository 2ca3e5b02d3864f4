"""``attnkit train lm``, ``attnkit generate`` and ``eval`` of language models: thin wrappers
around ``recipes.lm``."""

from __future__ import annotations

import argparse
import json
import math

import torch

from ..recipes import lm as recipe
from ..tasks import UnknownCharactersError
from .arguments import count, path, positive_int, refuse_flags
from .errors import UserError

# train options of the seq2seq recipe that mean nothing to a language model
NOT_FOR_LM = ("attention", "n", "normalize", "unknown_token", "target")


def is_lm_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "lm"


def cmd_train(args: argparse.Namespace) -> int:
    refuse_flags(args, NOT_FOR_LM, "lm", "the language model")
    if args.model is not None and args.model not in recipe.MODELS:
        raise UserError(f"--model for lm is one of {', '.join(recipe.MODELS)}")
    settings = {
        "d_model": args.d_model, "num_heads": args.heads, "layers": args.layers,
        "positions": args.positions, "hidden_dim": args.hidden, "epochs": args.epochs,
        "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
        "patience": args.patience,
        "time_limit": None if args.minutes is None else args.minutes * 60,
    }  # fmt: skip
    model = args.model or "decoder-only"
    own = recipe.model_fields(model)
    sized = ("d_model", "num_heads", "positions", "hidden_dim")
    wrong = [k for k in sized if settings[k] and k not in own]
    if wrong:
        raise UserError(f"{', '.join(wrong)} do not apply to {model}")
    run = recipe.train(args.data, out=args.out, model=args.model, context=args.context,
                       resume=args.resume, overwrite=args.overwrite, threads=args.threads,
                       **settings)  # fmt: skip
    valid = run.config["metrics"]["bits_per_char"]
    test = recipe.evaluate(run)["bits_per_char"]
    print(f"validation {valid:.4f} bits per character (epoch {run.config['epoch']}), test "
          f"{test:.4f}; checkpoint in {args.out}")  # fmt: skip
    print(f"try: attnkit generate --checkpoint {args.out} 'In the beginning'")
    return 0


def cmd_eval(args: argparse.Namespace, run: recipe.LMRun) -> int:
    text = None
    if args.data:
        text = _read(args.data)
    try:
        result = recipe.evaluate(run, text)
    except UnknownCharactersError as err:
        raise UserError(f"{err}; the model cannot score them") from None
    result = {"bits_per_char": result["bits_per_char"], "n": int(result["chars"])}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'characters':<16}{result['n']}")
        print(f"{'bits per char':<16}{result['bits_per_char']:.4f}")
    return 0


def _read(name: str) -> str:
    try:
        return recipe._read_text(name)
    except recipe.SettingsError as err:
        raise UserError(str(err)) from None


def cmd_generate(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    run = recipe.load(args.checkpoint)
    try:
        text = recipe.generate(run, args.prompt, args.length, temperature=args.temperature,
                               top_k=args.top_k, seed=args.seed)  # fmt: skip
    except UnknownCharactersError as err:
        raise UserError(str(err)) from None
    print(args.prompt + text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="continue a prompt with a trained language model")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("prompt")
    p.add_argument("--length", type=positive_int, default=300, help="characters to add")
    p.add_argument("--temperature", type=_temperature, default=0.8,
                   help="0 = greedy; higher is more varied (default 0.8)")  # fmt: skip
    p.add_argument("--top-k", type=positive_int, help="sample from the k most likely only")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_generate)


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0 (0 = greedy), got {text!r}")
    return value
