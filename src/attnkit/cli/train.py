"""``attnkit train TASK``: one subcommand per registered recipe, its flags generated from the
recipe's settings dataclass, with the defaults that task really uses (``Recipe.defaults``)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
from typing import Any

from ..recipes import base
from .arguments import path, positive_int

# flags of every task: where the checkpoint goes and how the run is carried out
JOB_FLAGS = ("out", "resume", "overwrite", "threads", "nproc", "device")


def default_text(defaults: dict[Any, dict[str, Any]], name: str) -> str:
    """The help's words for the default of setting ``name``, from each model's
    ``Recipe.defaults`` (``defaults``, the default model first): its value for the default
    model, and for each other model where it differs ("transformer: 0.001"), or the models
    it applies to."""
    models = list(defaults)
    if name == "model":
        return f"(default: {models[0]})" if models[0] else ""
    shown = [(m, values[name]) for m, values in defaults.items() if name in values]
    if not shown or all(v is None or v is False for _, v in shown):
        return ""
    first_model, first = shown[0]
    if first_model != models[0]:  # not a setting of the default model
        return f"({'; '.join(f'{m} only, default: {_value(v)}' for m, v in shown)})"
    others = [f"{m}: {_value(v)}" for m, v in shown[1:] if v != first]
    return f"(default: {'; '.join([_value(first), *others])})"


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "none"
    return str(v)


def add_settings(p: argparse.ArgumentParser, recipe: base.Recipe) -> None:
    """One flag per field of ``recipe.settings``, each None when not given."""
    defaults = {m: recipe.defaults(m) for m in recipe.models or (None,)}  # once per model
    for f in dataclasses.fields(recipe.settings):
        meta = f.metadata
        helptext = f"{meta.get('help', '')} {default_text(defaults, f.name)}".strip()
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": helptext.replace("%", "%%")}
        if meta.get("kind") is bool:
            kw.update(action="store_const", const=True)
        else:
            if meta.get("kind"):
                kw["type"] = meta["kind"]
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
            else:
                kw["metavar"] = meta.get("metavar") or base.flag_of(f).lstrip("-").upper().replace(
                    "-", "_"
                )
        p.add_argument(base.flag_of(f), **kw)


def add_job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=path, help="checkpoint directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint in --out")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    p.add_argument(
        "--nproc",
        type=positive_int,
        help="train in N processes on this machine "
        "(data parallel, through torchrun; the results do not depend on N)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto (a GPU where torch sees one, else the "
        "CPU), cpu, cuda or cuda:N; under torchrun each process takes its own GPU "
        "(NCCL) or the CPU (gloo)",
    )


def settings_of(recipe: base.Recipe, args: argparse.Namespace) -> Any:
    return recipe.settings(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(recipe.settings)}
    )


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: this command again, in N processes started by torchrun."""
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        "attnkit.cli",
        "--",
        *_without_nproc(args.argv),
    ]
    code = subprocess.run(cmd, check=False).returncode
    if code:
        print(
            f"attnkit train: a training process failed (exit code {code}); continue the run "
            "with --resume (any --nproc)",
            file=sys.stderr,
        )
    return code


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import devices, distributed

    devices.use(args.device)  # a ValueError names the devices there are
    if args.nproc and args.nproc > 1 and not distributed.under_launcher():
        distributed.check_processes(args.nproc)  # before launching anything
        return _launch(args)
    with distributed.group() as ctx:
        if ctx.rank > 0:  # one process speaks: the others' output would repeat it
            with contextlib.redirect_stdout(io.StringIO()):
                return _train(args)
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    recipe = base.get(args.task)
    settings = settings_of(recipe, args)
    if not args.resume:
        recipe.check_given(settings, getattr(settings, "model", None))
    job = base.Job(args.out, resume=args.resume, overwrite=args.overwrite, threads=args.threads)
    run = recipe.train(settings, job)
    for line in recipe.trained(run, job):
        print(line)
    return 0


def with_default_task(argv: list[str]) -> list[str]:
    """``attnkit train --data FILE ...`` (no task) is ``attnkit train pairs --data FILE ...``;
    ``attnkit train --out DIR --resume`` takes the task of the run in DIR."""
    if (
        len(argv) < 2
        or argv[0] != "train"
        or not argv[1].startswith("-")
        or argv[1] in ("-h", "--help")
    ):
        return argv
    task = "pairs"
    out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"), None)
    out = out or next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), None)
    if "--resume" in argv and out:
        from ..train import read_config

        with contextlib.suppress(ValueError, OSError):
            config = read_config(out)
            task = base.recipe_of(config).name if config else task
    return ["train", task, *argv[1:]]


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on a task: attnkit train TASK --help")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in base.names():
        recipe = base.get(name)
        t = tasks.add_parser(
            name, help=recipe.help, description=f"attnkit train {name}: {recipe.help}"
        )
        add_settings(t, recipe)
        add_job_flags(t)
        t.set_defaults(func=cmd_train)
