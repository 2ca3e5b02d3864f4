"""Image classification: the registered CNN with no attention block, squeeze-and-excitation or
CBAM, trained by the generic trainer on labelled images (scikit-learn's digits), the best
epoch by validation accuracy kept; its channel weights and spatial maps on request.

    >>> from attnkit.recipes import vision
    >>> vision.BLOCKS
    ('none', 'se', 'cbam')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import build, entry
from ..models.vision import BLOCKS
from ..tasks import images as ti
from ..train import CheckpointError, fit, load_model, read_config
from ..train.devices import device_of
from .seq2seq import SettingsError, merge_settings, prepare_out, saved_settings

__all__ = ["BLOCKS", "VisionRun", "evaluate", "load", "maps", "train"]

DEFAULTS = {"epochs": 30, "batch_size": 64, "lr": 3e-3, "patience": 8}
DATA_FIELDS = frozenset({"in_channels", "classes", "block"})
DATASETS = {"digits": ti.digits, "fashion-mnist": ti.fashion_mnist}


@dataclass
class VisionRun:
    model: nn.Module
    config: dict[str, Any]


class _Task:
    """Validation accuracy selects the epoch; the loss is shown beside it."""

    selection_metric = "accuracy"

    def evaluate(self, model: nn.Module, held: ti.Images) -> dict[str, float]:
        model.eval()
        device = device_of(model)
        with torch.no_grad():
            logits = torch.cat([model(x.to(device)).cpu() for x in held.x.split(1000)])
        model.train()
        return {"accuracy": float((logits.argmax(-1) == held.y).float().mean()),
                "valid_loss": float(F.cross_entropy(logits, held.y))}  # fmt: skip


def dataset(name: str) -> ti.ImageSet:
    if name not in DATASETS:
        raise SettingsError(f"unknown image data {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]()


def train(data: str = "digits", *, out: str | Path, block: str | None = None,
          resume: bool = False, overwrite: bool = False, threads: int | None = None,
          progress: bool = True, log=print, **settings: Any) -> VisionRun:  # fmt: skip
    """Train the image classifier with ``block`` (default "none") on ``data``; keep the best
    epoch in ``out``. ``settings`` are fields of ImageClassifierConfig or TrainConfig."""
    if threads:
        torch.set_num_threads(threads)
    resume = prepare_out(out, resume, overwrite, log)
    saved = read_config(out) if resume else None
    if saved is not None:
        if (saved.get("task") or {}).get("name") != "vision":
            raise SettingsError(f"{out} holds no image classifier run")
        if block is not None and block != saved["config"]["block"]:
            raise SettingsError(f"{out} holds a {saved['config']['block']} run, not {block}")
        block, data = saved["config"]["block"], saved["task"]["data"]
        settings = saved_settings(saved, settings, DATA_FIELDS)
    block = block or "none"
    if block not in BLOCKS:
        raise SettingsError(f"unknown block {block!r}; expected one of {', '.join(BLOCKS)}")
    own = frozenset(f.name for f in fields(entry("image-classifier").config_cls)) - DATA_FIELDS
    model_kw, tcfg = merge_settings({**settings, "progress": progress}, block, own, DATA_FIELDS,
                                    DEFAULTS)  # fmt: skip
    images = dataset(data)
    torch.manual_seed(tcfg.seed)
    net = build("image-classifier", {"in_channels": images.train.x.shape[1],
                                     "classes": len(images.classes), "block": block,
                                     **model_kw})  # fmt: skip
    params = sum(p.numel() for p in net.parameters())
    log(f"{data}: {len(images.train):,} training images, {len(images.valid):,} validation; "
        f"block {block}, {params:,} parameters")  # fmt: skip
    meta = {"task": {"name": "vision", "data": data, "classes": list(images.classes)}}
    state = fit(net, _Task(), images.train, images.valid, tcfg, out, meta, resume=resume, log=log)
    best = load(out)
    best.config["history"] = state["history"]
    return best


def load(checkpoint: str | Path) -> VisionRun:
    """The image classifier saved in ``checkpoint``; CheckpointError if it is not one."""
    model, config = load_model(checkpoint)
    task = config.get("task") or {}
    if task.get("name") != "vision" or len(task.get("classes", [])) != model.cfg.classes:
        raise CheckpointError(f"{checkpoint} holds no image classifier")
    return VisionRun(model, config)


def evaluate(run: VisionRun, split: str = "test") -> dict[str, float]:
    """Accuracy of the run on its data's ``split``."""
    images = dataset(run.config["task"]["data"])
    held = getattr(images, split)
    return {**_Task().evaluate(run.model, held), "n": len(held)}


def maps(run: VisionRun, x: Tensor) -> tuple[Tensor, list]:
    """(class probabilities (B, classes), each stage's (channel weights, spatial map))."""
    run.model.eval()
    with torch.no_grad():
        logits, weights = run.model(x, return_weights=True)
    return torch.softmax(logits, -1), weights
