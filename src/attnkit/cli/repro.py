"""``attnkit repro``: reproductions of papers' experiments (``raffel``: feed-forward attention
on the long-term memory problems, Raffel & Ellis 2015)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .arguments import count, name_list, path, positive_int
from .errors import UserError

LENGTHS = (100, 1000)
POOLINGS = ("attention", "mean")


def budget(length: int) -> int:
    """Default batches per run: room for attention to solve that T by the paper's protocol
    (seed 0 solves T = 1,000 at 4,000), and for mean pooling to show that it does not (a batch
    of T = 1,000 takes about 0.16 s on 2 cores)."""
    return 10_000 if length <= 100 else 6_000 if length <= 1000 else 3_000


def cmd_raffel(args: argparse.Namespace) -> int:
    from ..models import POOLINGS as KNOWN
    from ..recipes import raffel
    from ..recipes.memory import keep_freed_memory
    from ..tasks.longmemory import PROBLEMS

    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # each batch makes and drops tensors of tens of MB at T = 1,000
    problems = name_list(args.problems, PROBLEMS, "--problems", default=("add",))
    poolings = name_list(args.poolings, KNOWN, "--poolings", default=POOLINGS)
    lengths = _lengths(args.lengths) if args.lengths else LENGTHS
    results = []
    for problem in problems:
        for length in lengths:
            for pooling in poolings:
                limit = args.max_batches or budget(length)
                print(
                    f"{problem}, T = {length:,}, {pooling} pooling (up to {limit:,} batches)",
                    file=sys.stderr,
                )
                show = lambda step, worst: print(  # noqa: E731
                    f"  {step:>7,} batches: worst test error {worst:.4f}", file=sys.stderr
                )
                results.append(
                    raffel.solve(
                        problem, length, pooling, max_batches=limit, seed=args.seed, progress=show
                    )
                )
    text = (
        "Batches of 100 to solve (every one of 1,000 test sequences within 0.04), "
        f"seed {args.seed}:\n\n" + raffel.table(results)
    )
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def _lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 4:
        raise UserError(f"--lengths: comma-separated whole numbers >= 4, got {text!r}")
    return values


def register(sub) -> None:
    p = sub.add_parser("repro", help="reproduce a paper's experiment")
    what = p.add_subparsers(dest="repro", required=True)
    r = what.add_parser(
        "raffel",
        help="Raffel & Ellis 2015: feed-forward attention against "
        "mean pooling on the adding and multiplying problems",
    )
    r.add_argument("--problems", help="comma-separated: add (default), multiply")
    r.add_argument(
        "--lengths", help="comma-separated T (default: 100,1000; the paper goes to 10000)"
    )
    r.add_argument("--poolings", help="comma-separated (default: attention,mean)")
    r.add_argument(
        "--max-batches",
        type=positive_int,
        help="batches per run before giving up "
        "(default: 10,000 for T <= 100, 6,000 up to 1,000, else 3,000)",
    )
    r.add_argument("--seed", type=count, default=0)
    r.add_argument("--threads", type=positive_int)
    r.add_argument("--out", type=path, help="also write the table to this Markdown file")
    r.set_defaults(func=cmd_raffel)
