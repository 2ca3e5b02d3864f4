"""Where training runs: the CPU or a GPU, chosen once per process like torch's thread count.

``attnkit train --device auto|cpu|cuda|cuda:N`` calls :func:`use`; ``fit`` then trains on
:func:`~attnkit.train.distributed.training_device` unless it is given one. ``auto`` (the
default) is the GPU when torch sees one and the CPU otherwise; under torchrun with NCCL every
process trains on its own GPU (``LOCAL_RANK``), and with gloo on the CPU.

Batches follow the model: :func:`to_device` moves a batch (tensors inside named tuples, tuples,
lists, dicts, dataclasses and namespaces) to the model's device, so a task's ``batch()`` and
``evaluate()`` build their tensors on the CPU whatever the device.

>>> batch = to_device({"x": torch.ones(2), "n": [torch.zeros(1), 3]}, torch.device("cpu"))
>>> batch["x"].device.type, batch["n"][1]
('cpu', 3)
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

__all__ = ["chosen", "device_of", "gpu_wanted", "to_device", "use"]

_chosen: torch.device | None = None  # None: auto


def _parse(name: str) -> torch.device | None:
    """The device ``name`` names (None for auto); ValueError for anything else or a GPU this
    machine lacks."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N") from err
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {name!r}: torch sees no GPU on this machine (use cpu)")
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device {name!r}: this machine has {count} GPU(s), cuda:0..cuda:{count - 1}"
            )
    return device


def use(name: str) -> None:
    """Train on ``name`` (auto, cpu, cuda, cuda:N) from now on in this process."""
    global _chosen
    _chosen = _parse(name)


def gpu_wanted() -> bool:
    """Whether training goes to a GPU: one was chosen, or auto and torch sees one. Under
    torchrun this picks the backend: NCCL for GPUs, gloo for the CPU."""
    if _chosen is None:
        return torch.cuda.is_available()
    return _chosen.type == "cuda"


def chosen() -> torch.device | None:
    """The device :func:`use` chose, or None for auto."""
    return _chosen


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for one with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor inside it on ``device`` (the same object where nothing moves)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, SimpleNamespace):
        return SimpleNamespace(**{k: to_device(v, device) for k, v in vars(obj).items()})
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: to_device(getattr(obj, f.name), device)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the OS says)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1
