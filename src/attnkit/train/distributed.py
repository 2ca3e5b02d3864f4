"""Data-parallel training on torch.distributed, launched by torchrun.

``torchrun --nproc_per_node N -m attnkit.cli train ...`` (or ``attnkit train ... --nproc N``,
which calls torchrun) starts N processes. :func:`setup` joins them into one group (gloo on CPU,
NCCL on GPU) from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT). The trainer then wraps the model in DistributedDataParallel and keeps the results
independent of N:

- every step takes one *global* batch of ``batch_size`` examples, in the order of the sampler
  (the same in every process); rank r trains on its rows ``r::N`` and scales its mean loss by
  its share, so the averaged gradient is the gradient of the global batch's mean loss;
- the learning-rate schedule counts global steps, so it is the same whatever N;
- held-out examples are split into N contiguous shards without padding, each scored once, and
  the predictions gathered in order before the metrics are computed (:func:`shard`);
- only rank 0 writes checkpoints; a run resumes with any N.

>>> shard(10, 0, 3), shard(10, 1, 3), shard(10, 2, 3)
(range(0, 3), range(3, 6), range(6, 10))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Context", "all_gather", "barrier", "broadcast", "context", "setup", "shard",
           "under_launcher"]  # fmt: skip


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def device(self) -> torch.device:
        if dist.is_initialized() and dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def under_launcher() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(timeout_s: float = 1800) -> Context:
    """Join the process group torchrun describes (once); a single process gets Context()."""
    if not under_launcher():
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return context()


def context() -> Context:
    """This process's place in the group (Context() when not distributed)."""
    if not dist.is_available() or not dist.is_initialized():
        return Context()
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


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
