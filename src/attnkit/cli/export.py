"""``attnkit export``: a checkpoint's model as an ONNX graph (and what a runtime needs beside
it), through its recipe's ``export`` hook (:mod:`attnkit.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import path, positive_int
from .errors import UserError
from .verbs import open_checkpoint


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a directory for the graph and its files")
    recipe, run, options = open_checkpoint(args, "export")
    for written in recipe.export(run, out, target=options.target):
        print(f"wrote {written}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export", help="a checkpoint's model as an ONNX graph (--target mt5)")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("--out", required=True, type=path, help="directory of the graph and its files")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="(default: onnx)")
    p.add_argument(
        "--target", choices=("mt5",), help="mt5: static shapes and onnxruntime 1.14 operators"
    )
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_export)
