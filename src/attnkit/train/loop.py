"""The generic trainer: deterministic, resumable, early-stopping, for any model and task.

What it asks of its arguments (nothing else):

- ``model.loss(batch) -> Tensor``, a scalar to minimise;
- ``train.batch(indices) -> batch`` and ``len(train)`` (and the same of ``held_out``);
- ``task.evaluate(model, held_out) -> dict`` of metrics, ``task.selection_metric`` naming the
  one that selects the best epoch and that ``target`` refers to: higher is better, unless the
  task sets ``lower_is_better = True`` (a loss, bits per character).

Ready for data parallel training: the batch order comes from a sampler hook (an epoch's indices
for this process), seeds take the process rank, and only rank 0 writes checkpoints. The model
trains on :func:`~attnkit.train.distributed.training_device` (or ``device``): batches are moved to
it, the task's ``evaluate`` gets the model there, and ``fit`` returns the model where it was.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint, devices, distributed

# (epoch, dataset size) -> the epoch's indices in order (cut into batches of ``batch_size``),
# or its batches themselves: a list of index tensors, whose sizes may differ
Sampler = Callable[[int, int], torch.Tensor | list[torch.Tensor]]


class Data(Protocol):
    """A training or held-out data set as the trainer reads it."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> Any:
        """The examples ``indices`` (1-D) as one batch, the argument of ``model.loss``."""
        ...


class Task(Protocol):
    """What the trainer asks of a task: held-out metrics, one of which selects the best epoch
    (higher is better unless the task sets ``lower_is_better = True``)."""

    selection_metric: str

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, float]: ...


class Trainable(Protocol):
    """What the trainer asks of a model besides nn.Module: a scalar loss of a batch."""

    def loss(self, batch: Any) -> torch.Tensor: ...


class SettingsError(ValueError):
    """Settings that cannot be used (unknown, or contradicting the run being resumed)."""


@dataclass
class TrainConfig:
    """The only source of the trainer's defaults (``attnkit train`` uses them)."""

    epochs: int = 20  # the cosine schedule's length, and the most epochs
    batch_size: int = 128  # examples per optimiser step
    lr: float = 1e-2  # Adam, cosine-decayed to lr / 20 over `epochs`
    warmup: float = 0.0  # share of the steps over which lr rises linearly from 0 first
    target: float | None = None  # stop once the selection metric reaches this
    time_limit: float | None = None  # seconds of training; the schedule decays by time used
    patience: int = 4  # ... or after this many epochs without improvement
    seed: int = 0  # batch order, dropout and initialisation
    clip: float = 1.0  # gradient norm clipping
    progress: bool = True  # a progress bar per epoch (on a terminal)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.clip <= 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {self.time_limit}")


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch in one process: dropout differs across ranks, repeats on resume."""
    return seed * 100_003 + epoch + rank * 1_000_003


def shuffled(seed: int) -> Sampler:
    """The default sampler: a permutation of the data set per epoch, fixed by (seed, epoch)."""

    def sample(epoch: int, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))

    return sample


def fit(
    model: nn.Module,
    task: Task | None,
    train: Data,
    held_out: Data | None,
    cfg: TrainConfig,
    out: str | Path | None,
    meta: dict | None = None,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    sampler: Sampler | None = None,
    rank: int = 0,
    device: str | torch.device | None = None,
) -> dict:
    """Train ``model``; keep the best by ``task.selection_metric`` in the checkpoint ``out``.

    After every epoch ``out/trainer.pt`` holds everything needed to continue, so a run resumed
    with ``resume=True`` loses at most the epoch in progress and, because batch order and
    dropout are seeded per epoch, ends exactly where an uninterrupted run would. ``meta`` is
    stored in config.json beside the model (the task's description, the data's origin).
    Returns the trainer state: history of metrics and wall times, best score, epoch.

    Without ``held_out`` (and ``task``) nothing selects an epoch: every one of ``cfg.epochs``
    trains and the model ends as the last left it. With ``out`` None nothing is written and
    nothing can be resumed: the small fits of a walk-forward comparison, kept in memory.
    """
    if (task is None) != (held_out is None):
        raise ValueError("give both a task and held-out data, or neither")
    if out is None and resume:
        raise ValueError("a run without a checkpoint directory cannot be resumed")
    metric = task.selection_metric if task is not None else "loss"
    sign = -1.0 if task is None or getattr(task, "lower_is_better", False) else 1.0
    sampler = sampler or shuffled(cfg.seed)
    ctx = distributed.context()
    if ctx.distributed:
        rank = ctx.rank
    writer = rank == 0
    home = devices.device_of(model)
    place = torch.device(device) if device is not None else distributed.training_device()
    model.to(place)
    opt = _adam(list(model.parameters()), cfg.lr)
    steps = cfg.epochs * len(_batches(sampler(1, len(train)), cfg.batch_size))
    state: dict[str, Any] = {
        "epoch": 0,
        "best": -sign * math.inf,
        "bad_epochs": 0,
        "history": [],
        "elapsed": 0.0,
    }
    started = time.perf_counter()  # moved back by the elapsed time of a resumed run, below
    clock = lambda: time.perf_counter() - started  # noqa: E731  (seconds trained, resumes included)
    factor = _cosine(steps, round(cfg.warmup * steps))
    if cfg.time_limit is not None:
        factor = _by_time(factor, steps, cfg, clock)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if out is None:
        writer = False
    elif writer:
        checkpoint.remove_temp_files(out)  # left by a run that was killed while writing
    saved = checkpoint.load_trainer(out) if resume and out is not None else None
    if saved is not None:
        _restore(model, opt, sched, saved, out)
        state = {k: saved[k] for k in state}
        log(f"resuming after epoch {state['epoch']} (best {metric} {state['best']:.4f})")
    started = time.perf_counter() - state["elapsed"]
    ddp = None
    if ctx.distributed:  # after any restore; every rank starts from rank 0's parameters
        probe = devices.to_device(train.batch(torch.arange(min(len(train), 2))), place)
        ddp = _data_parallel(model, probe, place)

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        if _finished(state, cfg, sign):
            break
        torch.manual_seed(epoch_seed(cfg.seed, epoch, rank))  # dropout: same per epoch on resume
        deadline = None if cfg.time_limit is None else started + cfg.time_limit
        batches = _batches(sampler(epoch, len(train)), cfg.batch_size)
        steps_done = _train_epoch(
            model, train, batches, opt, sched, cfg, epoch, deadline, ddp, place
        )
        loss = sum(steps_done) / max(len(steps_done), 1)
        metrics = {} if task is None else _evaluate(task, model, held_out, ctx)
        state["elapsed"] = time.perf_counter() - started
        state["epoch"] = epoch
        state["history"].append(
            {
                "epoch": epoch,
                "seconds": state["elapsed"],
                "loss": loss,
                **metrics,
                "step_losses": steps_done,
            }
        )
        score = metrics[metric] if task is not None else loss  # no held-out set: the last epoch
        improved = task is None or sign * score > sign * state["best"]
        if improved:
            state["best"], state["bad_epochs"] = score, 0
        else:
            state["bad_epochs"] += 1
        if writer and out is not None:
            if improved:
                info = {"metrics": metrics, "epoch": epoch, "train_config": asdict(cfg)}
                checkpoint.save_model(out, model, {**(meta or {}), **info})
            checkpoint.save_trainer(
                out,
                {
                    **state,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                },
            )
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        log(
            f"epoch {epoch:>3}  loss {loss:.4f}  {shown}  {state['elapsed']:.1f}s"
            + ("  *" if improved else "")
        )
    distributed.barrier()  # the checkpoint is written before any process reads it
    model.to(home)
    return state


class _Loss(nn.Module):
    """``model.loss`` as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def _data_parallel(model: nn.Module, probe, place: torch.device) -> nn.Module:
    """The model's loss in DistributedDataParallel (which starts every rank from rank 0's
    parameters). ``probe``, a batch, tells whether some parameters get no gradient (a branch
    the configuration does not use): only then does DDP look for them at every step."""
    from torch.nn.parallel import DistributedDataParallel

    params = [p for p in model.parameters() if p.requires_grad]
    with torch.random.fork_rng():
        loss = cast(Callable[[Any], torch.Tensor], model.loss)  # the trainer's contract
        grads = torch.autograd.grad(loss(probe), params, allow_unused=True)
    unused = any(g is None for g in grads)
    flags = torch.tensor([float(unused)], device=place)  # NCCL reduces GPU tensors only
    torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
    ids = [place.index] if place.type == "cuda" else None
    return DistributedDataParallel(
        _Loss(model), device_ids=ids, find_unused_parameters=bool(flags.item())
    )


def _batches(order, batch_size: int) -> list[torch.Tensor]:
    """A sampler's answer as the epoch's batches: a flat order cut into ``batch_size``, or the
    batches it gave (each a non-empty 1-D index tensor)."""
    if isinstance(order, torch.Tensor):
        return list(order.split(batch_size))
    batches = list(order)
    if not batches or any(b.dim() != 1 or not len(b) for b in batches):
        raise ValueError("a sampler's batches must be non-empty 1-D index tensors")
    return batches


def _train_epoch(
    model,
    train,
    batches,
    opt,
    sched,
    cfg: TrainConfig,
    epoch: int,
    deadline: float | None = None,
    ddp=None,
    place: torch.device | None = None,
) -> list[float]:
    """One pass over ``batches``, or until ``deadline`` (a perf_counter time); returns the
    loss of every step: the mean over its global batch.

    Under data parallelism each rank trains on its rows ``rank::world`` of the global batch,
    its mean loss scaled by its share (rows * world / batch), so the gradients DDP averages are
    the global batch's; every rank stops at the same step."""
    ctx = distributed.context()  # one process: rank 0 of 1, whose rows are the whole batch
    loss_of = model.loss if ddp is None else ddp
    place = place or torch.device("cpu")
    model.train()
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}",
        leave=False,
        file=sys.stderr,
        disable=not cfg.progress or ctx.rank > 0 or None,
    )
    parts: list[float] = []  # this rank's part of each step's global mean loss
    for idx in bar:
        local = idx[ctx.rank :: ctx.world]
        share = len(local) * ctx.world / len(idx)
        if not len(local):  # a last batch smaller than the world: take part, add nothing
            local, share = idx[:1], 0.0
        loss = loss_of(devices.to_device(train.batch(local), place))
        opt.zero_grad(set_to_none=True)
        (loss if share == 1.0 else loss * share).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        value = loss.item()
        parts.append(value * share / ctx.world)
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        stop = deadline is not None and time.perf_counter() >= deadline
        if ddp is not None and deadline is not None:  # all ranks stop at the same step
            flag = torch.tensor([float(stop)], device=place)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            break
    steps = torch.tensor(parts, dtype=torch.float64, device=place)
    if ddp is not None:
        torch.distributed.all_reduce(steps)
    return steps.tolist()


def _evaluate(task, model: nn.Module, held_out, ctx: distributed.Context) -> dict:
    """The task's metrics on the held-out data. Under data parallelism, a task with
    ``predict_rows(model, data, rows) -> list`` and ``score(data, predictions) -> dict`` has
    its examples split into contiguous shards, each scored once by one rank, and the
    predictions gathered in order; any other task is evaluated by rank 0 alone and its metrics
    broadcast. Either way every example counts once, as in one process."""
    if not ctx.distributed:
        return task.evaluate(model, held_out)
    if hasattr(task, "predict_rows") and hasattr(task, "score"):
        rows = list(distributed.shard(len(held_out), ctx.rank, ctx.world))
        parts = distributed.all_gather(task.predict_rows(model, held_out, rows))
        return task.score(held_out, [p for part in parts for p in part])
    return distributed.broadcast(task.evaluate(model, held_out) if ctx.rank == 0 else None)


_TRAINER_KEYS = (
    "epoch",
    "best",
    "bad_epochs",
    "history",
    "elapsed",
    "model",
    "optimizer",
    "scheduler",
)


def _restore(model, opt, sched, saved: dict, out) -> None:
    missing = [k for k in _TRAINER_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise checkpoint.CheckpointError(
            f"{out}/{checkpoint.TRAINER} is incomplete: it lacks {', '.join(missing)}"
        )
    try:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise checkpoint.CheckpointError(
            f"the run in {out} was trained with another model size or attention: {err}"
        ) from None


def _cosine(total_steps: int, warmup: int = 0) -> Callable[[int], float]:
    """lr factor: linear from 1/warmup to 1 over ``warmup`` steps, then cosine to 0.05."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min((step - warmup) / max(total_steps - warmup, 1), 1)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def _by_time(
    by_step: Callable[[int], float], steps: int, cfg: TrainConfig, clock
) -> Callable[[int], float]:
    """The step schedule, advanced to the share of ``time_limit`` used where that is ahead:
    a run cut short by its time budget still ends its cosine decay."""
    limit = cfg.time_limit

    def factor(step: int) -> float:
        ahead = math.floor(min(clock() / limit, 1.0) * steps)
        return by_step(max(step, ahead))

    return factor


def _adam(params: list, lr: float) -> torch.optim.Adam:
    """Adam with the fused (one kernel per step) update where this torch and device have it."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _finished(state: dict, cfg: TrainConfig, sign: float = 1.0) -> bool:
    if cfg.target is not None and sign * state["best"] >= sign * cfg.target:
        return True
    if cfg.time_limit is not None and state["elapsed"] >= cfg.time_limit:
        return True
    return state["bad_epochs"] >= cfg.patience


def prepare_out(out: str | Path, resume: bool, overwrite: bool, log=print) -> bool:
    """Check the checkpoint directory before any work; True if there is a run to resume.

    A directory that holds a checkpoint is only continued (``resume``) or replaced
    (``overwrite``, which deletes the old files first), never overwritten by accident; a run
    without its trainer.pt cannot be resumed (its best model would be overwritten by a fresh
    start)."""
    out = Path(out)
    if resume and overwrite:
        raise SettingsError("choose --resume or --overwrite, not both")
    if not str(out).strip():
        raise SettingsError("the checkpoint directory name is empty")
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{out} is a file, not a checkpoint directory")
    present = [
        n for n in (checkpoint.MODEL, checkpoint.CONFIG, checkpoint.TRAINER) if (out / n).exists()
    ]
    if present and not (resume or overwrite):
        raise SettingsError(
            f"{out} already holds a checkpoint; continue it with --resume or replace it with "
            "--overwrite"
        )
    if resume and not present:  # a run killed before its first epoch ended left nothing
        raise SettingsError(
            f"nothing to resume in {out}: it holds no checkpoint; start the run without --resume"
        )
    if resume and present and checkpoint.TRAINER not in present:
        raise SettingsError(
            f"{out} cannot be resumed: {checkpoint.TRAINER} (the optimizer state) is missing; "
            "start afresh with --overwrite"
        )
    ctx = distributed.context()
    distributed.barrier()  # every process has looked before rank 0 changes anything
    if ctx.rank == 0:  # the one process that writes checkpoints
        if overwrite:
            for name in present:
                (out / name).unlink()
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".attnkit-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise SettingsError(f"cannot write to {out}: {err.strerror or err}") from None
    distributed.barrier()
    return resume and bool(present)
