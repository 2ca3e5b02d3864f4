"""Checkpoints: a directory with model.safetensors, config.json and trainer.pt.

- ``model.safetensors``: the weights of the best model so far (no code, no pickle);
- ``config.json``: ``{"model": registered name, "config": {...}}``, the task with its
  vocabularies, where the data came from, attnkit version, metrics;
- ``trainer.pt``: what ``--resume`` needs (last weights, optimizer, scheduler, RNG, history),
  read with ``torch.load(weights_only=True)``.

Every file is written to a temporary name in the same directory and renamed, so an
interrupted write never leaves a half-written checkpoint behind.

Checkpoints written by attnkit 0.1 (config.json with the seq2seq config under "model" and the
vocabularies at the top level) load too: :func:`read_config` upgrades them on reading.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..models import registry

MODEL, CONFIG, TRAINER = "model.safetensors", "config.json", "trainer.pt"
FORMAT = 2  # config.json layout; 1 is attnkit 0.1's


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or corrupt."""


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(directory: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write the weights and config.json (atomically, weights first); ``model`` must be a
    registered model, ``meta`` anything JSON-able to keep beside it."""
    directory = Path(directory)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic(directory / MODEL, lambda p: save_file(state, p))
    config = {
        "attnkit_version": __version__,
        "format": FORMAT,
        "model": registry.name_of(model),
        "config": registry.config_to_dict(model.cfg),
        **meta,
    }
    text = json.dumps(config, indent=1, ensure_ascii=False)
    _atomic(directory / CONFIG, lambda p: Path(p).write_text(text, encoding="utf-8"))


def read_config(directory: str | Path) -> dict | None:
    """config.json as a dict (upgraded to the current layout), or None when there is none
    yet; CheckpointError if unreadable."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is corrupt: not a JSON object")
    if isinstance(config.get("model"), dict):
        config = _upgrade_v1(config)
    if not isinstance(config.get("model"), str) or not isinstance(config.get("config"), dict):
        raise CheckpointError(f"{path} is corrupt: no model name and config")
    return config


def _upgrade_v1(old: dict) -> dict:
    """attnkit 0.1's config.json (a seq2seq model) in the current layout."""
    new = {
        k: v
        for k, v in old.items()
        if k
        not in ("model", "src_vocab", "tgt_vocab", "task", "n", "seed", "held_out", "max_input_len")
    }
    new.update(format=FORMAT, model="seq2seq", config=old["model"], upgraded_from=1)
    new["task"] = {
        "name": old.get("task") or "pairs",
        "src_vocab": old.get("src_vocab"),
        "tgt_vocab": old.get("tgt_vocab"),
        "max_input_len": old.get("max_input_len", 200),
    }
    if old.get("task"):
        new["data"] = {k: old.get(k) for k in ("task", "n", "seed", "held_out")}
    else:
        new["data"] = {"file": old.get("data"), "seed": old.get("seed"),
                       "held_out": old.get("held_out")}  # fmt: skip
    return new


def load_model(directory: str | Path) -> tuple[nn.Module, dict]:
    """(model in eval mode, config dict); CheckpointError if missing, corrupt or mismatched.

    The config is checked field by field against the model's config dataclass before anything
    is built, and the weights against the model's shapes."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    for name in (MODEL, CONFIG):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} is not a checkpoint: {name} is missing")
    config = read_config(directory)
    try:
        model = registry.build(
            config["model"], registry.config_from_dict(config["model"], config["config"])
        )
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{directory / CONFIG} is corrupt: {err}") from None
    try:
        model.load_state_dict(load_file(directory / MODEL))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{directory / MODEL} is corrupt or does not match: {err}") from None
    return model.eval(), config


def save_trainer(directory: str | Path, state: dict[str, Any]) -> None:
    _atomic(Path(directory) / TRAINER, lambda p: torch.save(state, p))


def load_trainer(directory: str | Path) -> dict[str, Any] | None:
    """The trainer state, or None when there is none yet."""
    path = Path(directory) / TRAINER
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from None
