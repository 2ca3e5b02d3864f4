"""Data-parallel training on torch.distributed, launched by torchrun.

``torchrun --nproc_per_node N -m attnkit.cli train ...`` (or ``attnkit train ... --nproc N``,
which calls torchrun) starts N processes. :func:`setup` joins them into one group (gloo on CPU,
NCCL on GPU) from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). The trainer then wraps the model in DistributedDataParallel and keeps the results
independent of N:

- every step takes one *global* batch of ``batch_size`` examples (or the sampler's next batch),
  in the order of the sampler (the same in every process); rank r trains on its rows ``r::N``
  and scales its mean loss by its share, so the averaged gradient is the gradient of the
  global batch's mean loss;
- the learning-rate schedule counts global steps, so it is the same whatever N;
- held-out examples are split into N contiguous shards without padding, each scored once, and
  the predictions gathered in order before the metrics are computed (:func:`shard`);
- only rank 0 writes checkpoints; a run resumes with any N.

>>> shard(10, 0, 3), shard(10, 1, 3), shard(10, 2, 3)
(range(0, 3), range(3, 6), range(6, 10))
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from . import devices

__all__ = [
    "Context",
    "all_gather",
    "backend",
    "barrier",
    "broadcast",
    "check_gpus",
    "check_processes",
    "context",
    "group",
    "setup",
    "shard",
    "teardown",
    "training_device",
    "under_launcher",
]


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    joined: bool = False  # in a process group (a launcher's, even of one process)

    @property
    def distributed(self) -> bool:
        return self.joined

    @property
    def device(self) -> torch.device:
        if backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def under_launcher() -> bool:
    """Whether torchrun (or another launcher) started this process: it set RANK and
    WORLD_SIZE, whatever the number of processes."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(timeout_s: float = 1800) -> Context:
    """Join the process group torchrun describes (once): NCCL where training goes to GPUs
    (:func:`~attnkit.train.devices.gpu_wanted`), else gloo. A process no launcher started gets
    Context(), alone.

    NCCL runs one process per GPU; a machine asked for more processes than it has GPUs gets a
    ValueError that says what to do instead."""
    if not under_launcher():
        return Context()
    if not dist.is_initialized():
        nccl = devices.gpu_wanted()
        if nccl:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            check_gpus(int(os.environ.get("LOCAL_WORLD_SIZE", local + 1)))
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if nccl else "gloo", timeout=timedelta(seconds=timeout_s))
    return context()


def teardown() -> None:
    """Leave the process group, if this process joined one. A process that exits without this
    can abort in the backend's exit handlers (gloo: "terminate called without an active
    exception") while its peers still talk to it."""
    if backend() is not None:
        dist.destroy_process_group()


@contextlib.contextmanager
def group(timeout_s: float = 1800) -> Iterator[Context]:
    """:func:`setup` for a ``with`` block that leaves the group at its end. A block that ends
    normally first waits for every rank (so none exits while another still gathers from it);
    one that raises leaves at once, since its peers may never reach the barrier.

    >>> with group() as ctx:  # no launcher: alone, and nothing to leave
    ...     ctx.world
    1
    """
    ctx = setup(timeout_s)
    try:
        yield ctx
        barrier()
    finally:
        teardown()


def check_processes(per_node: int) -> None:
    """ValueError where ``--nproc`` would start more processes on this machine than it can run:
    more than its CPU cores under gloo (each process is a whole copy of the model and its data:
    more only slows every one of them and can exhaust the memory), more than its GPUs under
    NCCL (:func:`check_gpus`)."""
    if devices.gpu_wanted():
        check_gpus(per_node)
        return
    cores = devices.cpu_cores()
    if per_node > cores:
        raise ValueError(
            f"{per_node} processes on a machine with {cores} CPU core(s) for this process: "
            f"start at most {cores} (--nproc {cores})"
        )


def check_gpus(per_node: int) -> None:
    """ValueError where NCCL would be asked for more processes on this machine than it has
    GPUs (it runs one process per GPU); nothing where training stays on the CPU (gloo)."""
    if not devices.gpu_wanted():
        return
    gpus = torch.cuda.device_count()
    if per_node > gpus:
        raise ValueError(
            f"{per_node} processes on a machine with {gpus} GPU(s): NCCL needs a GPU per "
            f"process. Start at most {gpus} per machine, or hide the GPUs "
            "(CUDA_VISIBLE_DEVICES=) to train on the CPU with gloo"
        )


def backend() -> str | None:
    """The process group's backend ("nccl", "gloo"), or None outside one."""
    if not dist.is_available() or not dist.is_initialized():
        return None
    return str(dist.get_backend())


def context() -> Context:
    """This process's place in the group (Context() when not distributed)."""
    if not dist.is_available() or not dist.is_initialized():
        return Context()
    return Context(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), joined=True
    )


def shard(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous share of ``n`` examples: the shards tile 0..n-1 exactly
    (sizes differ by at most one; nothing is repeated to even them out)."""
    return range(n * rank // world, n * (rank + 1) // world)


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    ctx = context()
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not context().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if context().distributed:
        dist.barrier()


def training_device() -> torch.device:
    """The device ``fit`` trains on: in a process group, the process's own (its GPU under
    NCCL, the CPU under gloo), else the one :func:`~attnkit.train.devices.use` chose (auto:
    the GPU where there is one)."""
    if backend() is not None:
        return context().device
    chosen = devices.chosen()
    return torch.device("cuda" if devices.gpu_wanted() else "cpu") if chosen is None else chosen
