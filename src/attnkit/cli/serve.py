"""``attnkit serve``: the attention explorer over the checkpoints named at start."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .arguments import path, positive_int
from .errors import UserError


def _directories(args: argparse.Namespace) -> list[Path]:
    found = [Path(c) for c in args.checkpoint or []]
    if args.runs:
        runs = Path(args.runs)
        if not runs.is_dir():
            raise UserError(f"--runs {runs} is not a directory")
        found += sorted(p.parent for p in runs.glob("*/config.json"))
    if not found:
        raise UserError(
            "name the checkpoints to serve: --checkpoint DIR (repeatable) or "
            "--runs DIR (every checkpoint directly under it)"
        )
    return found


def cmd_serve(args: argparse.Namespace) -> int:
    import torch

    from ..serve import load_served, server
    from ..serve.models import served_name
    from ..train import CheckpointError

    if args.threads:
        torch.set_num_threads(args.threads)
    models = {}
    for directory in _directories(args):
        name = served_name(directory, set(models))
        try:
            models[name] = load_served(directory, name)
        except CheckpointError as err:
            if args.checkpoint and directory in map(Path, args.checkpoint):
                raise
            print(f"attnkit serve: skipping {directory}: {err}", file=sys.stderr)
    if not models:
        raise UserError("none of the directories holds a model the explorer shows")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"attnkit serve: listening on {args.host}: anyone who can reach it can use the models",
            file=sys.stderr,
        )
    names = ", ".join(f"{n} ({m.kind})" for n, m in models.items())
    print(f"serving {names} on http://{args.host}:{args.port}/", file=sys.stderr)
    server(models, args.host, args.port).run()
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="the attention explorer: a web page over checkpoints")
    p.add_argument(
        "--checkpoint",
        action="append",
        type=path,
        help="a checkpoint directory to serve (repeat for several)",
    )
    p.add_argument("--runs", type=path, help="serve every checkpoint directly under this")
    p.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=positive_int, default=8000)
    p.add_argument("--threads", type=positive_int, help="torch threads")
    p.set_defaults(func=cmd_serve)
