"""The generic trainer: deterministic, resumable, early-stopping, for any model and task.

What it asks of its arguments (nothing else):

- ``model.loss(batch) -> Tensor``, a scalar to minimise;
- ``train.batch(indices) -> batch`` and ``len(train)`` (and the same of ``held_out``);
- ``task.evaluate(model, held_out) -> dict`` of metrics, ``task.selection_metric`` naming the
  one that selects the best epoch and that ``target`` refers to: higher is better, unless the
  task sets ``lower_is_better = True`` (a loss, bits per character).

Ready for data parallel training: the batch order comes from a sampler hook (an epoch's indices
for this process), seeds take the process rank, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint

Sampler = Callable[[int, int], torch.Tensor]  # (epoch, dataset size) -> indices, in order


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
    task: Any,
    train: Any,
    held_out: Any,
    cfg: TrainConfig,
    out: str | Path,
    meta: dict | None = None,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    sampler: Sampler | None = None,
    rank: int = 0,
) -> dict:
    """Train ``model``; keep the best by ``task.selection_metric`` in the checkpoint ``out``.

    After every epoch ``out/trainer.pt`` holds everything needed to continue, so a run resumed
    with ``resume=True`` loses at most the epoch in progress and, because batch order and
    dropout are seeded per epoch, ends exactly where an uninterrupted run would. ``meta`` is
    stored in config.json beside the model (the task's description, the data's origin).
    Returns the trainer state: history of metrics and wall times, best score, epoch.
    """
    metric = task.selection_metric
    sign = -1.0 if getattr(task, "lower_is_better", False) else 1.0
    sampler = sampler or shuffled(cfg.seed)
    writer = rank == 0
    opt = _adam(list(model.parameters()), cfg.lr)
    steps = cfg.epochs * math.ceil(len(train) / cfg.batch_size)
    state = {"epoch": 0, "best": -sign * math.inf, "bad_epochs": 0, "history": [],
             "elapsed": 0.0}  # fmt: skip
    started = time.perf_counter()  # moved back by the elapsed time of a resumed run, below
    clock = lambda: time.perf_counter() - started  # noqa: E731  (seconds trained, resumes included)
    factor = _cosine(steps, round(cfg.warmup * steps))
    if cfg.time_limit is not None:
        factor = _by_time(factor, steps, cfg, clock)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if writer:
        checkpoint.remove_temp_files(out)  # left by a run that was killed while writing
    saved = checkpoint.load_trainer(out) if resume else None
    if saved is not None:
        _restore(model, opt, sched, saved, out)
        state = {k: saved[k] for k in state}
        log(f"resuming after epoch {state['epoch']} (best {metric} {state['best']:.4f})")
    started = time.perf_counter() - state["elapsed"]

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        if _finished(state, cfg, sign):
            break
        torch.manual_seed(epoch_seed(cfg.seed, epoch, rank))  # dropout: same per epoch on resume
        deadline = None if cfg.time_limit is None else started + cfg.time_limit
        loss = _train_epoch(model, train, sampler(epoch, len(train)), opt, sched, cfg, epoch,
                            deadline)  # fmt: skip
        metrics = task.evaluate(model, held_out)
        state["elapsed"] = time.perf_counter() - started
        state["epoch"] = epoch
        state["history"].append(
            {"epoch": epoch, "seconds": state["elapsed"], "loss": loss, **metrics}
        )
        improved = sign * metrics[metric] > sign * state["best"]
        if improved:
            state["best"], state["bad_epochs"] = metrics[metric], 0
        else:
            state["bad_epochs"] += 1
        if writer:
            if improved:
                info = {"metrics": metrics, "epoch": epoch, "train_config": asdict(cfg)}
                checkpoint.save_model(out, model, {**(meta or {}), **info})
            checkpoint.save_trainer(
                out,
                {**state, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict()},
            )  # fmt: skip
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        log(f"epoch {epoch:>3}  loss {loss:.4f}  {shown}  {state['elapsed']:.1f}s"
            + ("  *" if improved else ""))  # fmt: skip
    return state


def _train_epoch(model, train, order, opt, sched, cfg: TrainConfig, epoch: int,
                 deadline: float | None = None) -> float:  # fmt: skip
    """One pass over ``order`` in batches, or until ``deadline`` (a perf_counter time);
    returns the mean of its batches' losses (the last batch's alone depends on which examples
    it holds: with batches of similar length, on their length)."""
    model.train()
    bar = tqdm(order.split(cfg.batch_size), desc=f"epoch {epoch}", leave=False, file=sys.stderr,
               disable=not cfg.progress or None)  # fmt: skip
    total, steps = torch.zeros((), dtype=torch.float64), 0
    for idx in bar:
        loss = model.loss(train.batch(idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        total += loss.detach().double().cpu()
        steps += 1
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if deadline is not None and time.perf_counter() >= deadline:
            break
    return total.item() / max(steps, 1)


_TRAINER_KEYS = ("epoch", "best", "bad_epochs", "history", "elapsed", "model", "optimizer",
                 "scheduler")  # fmt: skip


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


def _by_time(by_step: Callable[[int], float], steps: int, cfg: TrainConfig, clock
             ) -> Callable[[int], float]:  # fmt: skip
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
