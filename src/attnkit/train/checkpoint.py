"""Checkpoints: a directory with model.safetensors, config.json and trainer.pt.

- ``model.safetensors``: the weights of the best model so far (no code, no pickle);
- ``config.json``: model config, task, vocabularies, attnkit version, metrics;
- ``trainer.pt``: what ``--resume`` needs (last weights, optimizer, scheduler, RNG, history),
  read with ``torch.load(weights_only=True)``.

Every file is written to a temporary name in the same directory and renamed, so an
interrupted write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..models import Seq2Seq, Seq2SeqConfig
from ..tasks import CharVocab

MODEL, CONFIG, TRAINER = "model.safetensors", "config.json", "trainer.pt"


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


def save_model(
    directory: str | Path,
    model: Seq2Seq,
    src_vocab: CharVocab,
    tgt_vocab: CharVocab,
    meta: dict[str, Any],
) -> None:
    """Write the weights and config.json (atomically, weights first)."""
    directory = Path(directory)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic(directory / MODEL, lambda p: save_file(state, p))
    config = {
        "attnkit_version": __version__,
        "model": model.cfg.to_dict(),
        "src_vocab": src_vocab.to_list(),
        "tgt_vocab": tgt_vocab.to_list(),
        **meta,
    }
    text = json.dumps(config, indent=1, ensure_ascii=False)
    _atomic(directory / CONFIG, lambda p: Path(p).write_text(text, encoding="utf-8"))


def read_config(directory: str | Path) -> dict | None:
    """config.json as a dict, or None when there is none yet; CheckpointError if unreadable."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is corrupt: not a JSON object")
    return config


def load_model(directory: str | Path) -> tuple[Seq2Seq, CharVocab, CharVocab, dict]:
    """(model in eval mode, src vocab, tgt vocab, config dict); CheckpointError if unusable."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    for name in (MODEL, CONFIG):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} is not a checkpoint: {name} is missing")
    config = read_config(directory)
    try:
        cfg = Seq2SeqConfig(**config["model"])
        src_vocab = CharVocab.from_list(config["src_vocab"])
        tgt_vocab = CharVocab.from_list(config["tgt_vocab"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{directory / CONFIG} is corrupt: {err}") from None
    model = Seq2Seq(cfg)
    try:
        state = load_file(directory / MODEL)
        model.load_state_dict(state)
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{directory / MODEL} is corrupt or does not match: {err}") from None
    return model.eval(), src_vocab, tgt_vocab, config


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
