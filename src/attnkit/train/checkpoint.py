"""Checkpoints: a directory with model.safetensors, config.json and trainer.pt.

- ``model.safetensors``: the weights of the best model so far (no code, no pickle);
- ``config.json``: ``{"model": registered name, "config": {...}}``, the task with its
  vocabularies, where the data came from, attnkit version, metrics;
- ``trainer.pt``: what ``--resume`` needs (last weights, optimizer, scheduler, RNG, history),
  read with ``torch.load(weights_only=True)``.

Every file is written to a temporary name in the same directory and renamed, so an
interrupted write never leaves a half-written file behind; the temporary files a killed
process leaves are removed by the next run (:func:`remove_temp_files`). The weights carry a
digest of the parts of config.json that shape the model (model, config, task) in their
metadata, so a config.json that was edited, or that belongs to another write (a reader between
the two renames of a run that is saving), is detected: the reader retries briefly and then
refuses. Shapes are checked from the weights file's header before anything is allocated.

Checkpoints written by attnkit 0.1 (config.json with the seq2seq config under "model" and the
vocabularies at the top level) load too: :func:`read_config` upgrades them on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file
from torch import nn

from .. import __version__
from ..models import registry

MODEL, CONFIG, TRAINER = "model.safetensors", "config.json", "trainer.pt"
FORMAT = 2  # config.json layout; 1 is attnkit 0.1's
DIGEST = "attnkit_config_sha256"  # metadata key in model.safetensors
_DIGESTED = ("model", "config", "task")  # the parts of config.json the weights depend on
_RETRIES, _WAIT = 20, 0.05  # a reader waits up to a second for a writer between two renames


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


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of the parts of a config.json that the weights depend on."""
    core = {k: config.get(k) for k in _DIGESTED}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def save_model(directory: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write the weights and config.json (atomically, weights first); ``model`` must be a
    registered model, ``meta`` anything JSON-able to keep beside it."""
    directory = Path(directory)
    config = {
        "attnkit_version": __version__,
        "format": FORMAT,
        "model": registry.name_of(model),
        "config": registry.config_to_dict(model.cfg),
        **meta,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in _own_state(model).items()}
    digest = {DIGEST: config_digest(config)}
    _atomic(directory / MODEL, lambda p: save_file(state, p, metadata=digest))
    text = json.dumps(config, indent=1, ensure_ascii=False)
    _atomic(directory / CONFIG, lambda p: Path(p).write_text(text, encoding="utf-8"))


def remove_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files that interrupted writes left in ``directory``; returns them.
    Call it only where no other process is writing to the same directory."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for name in (MODEL, CONFIG, TRAINER) for p in directory.glob(f".{name}.*")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
        new["data"] = {
            "file": old.get("data"),
            "seed": old.get("seed"),
            "held_out": old.get("held_out"),
        }
    return new


def _header(data: bytes, path: Path) -> dict:
    """The JSON header of a safetensors file's bytes (tensor dtypes, shapes, metadata)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        if n > len(data) - 8:
            raise ValueError("header longer than the file")
        header = json.loads(data[8 : 8 + n])
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        return header
    except (struct.error, ValueError, RecursionError) as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from None


def _read_pair(directory: Path) -> tuple[dict, bytes, dict]:
    """config.json, the weights' bytes and header, from one consistent write: retried while
    the weights' digest does not match the config (a writer between its two renames)."""
    for attempt in range(_RETRIES):
        config = read_config(directory)
        if config is None:
            raise CheckpointError(f"{directory} is not a checkpoint: {CONFIG} is missing")
        try:
            data = (directory / MODEL).read_bytes()
        except OSError as err:
            raise CheckpointError(f"{directory / MODEL} cannot be read: {err}") from None
        header = _header(data, directory / MODEL)
        saved = (header.get("__metadata__") or {}).get(DIGEST)
        if saved is None and "upgraded_from" not in config:
            raise CheckpointError(
                f"{directory / MODEL} carries no digest of its config: every checkpoint of "
                f"this format has one, so the weights were rewritten without it (and "
                f"{CONFIG} may have been edited)"
            )
        if saved is None or saved == config_digest(config):  # None: attnkit 0.1's layout
            return config, data, header
        if attempt < _RETRIES - 1:
            time.sleep(_WAIT)
    raise CheckpointError(
        f"{directory / CONFIG} does not match {directory / MODEL}: it was edited, or the two "
        "come from different writes"
    )


def load_model(directory: str | Path) -> tuple[nn.Module, dict]:
    """(model in eval mode, config dict); CheckpointError if missing, corrupt or mismatched.

    The config is checked field by field against the model's config dataclass and against
    the weights' digest, and the weights' shapes (from the file's header) against the model
    that config describes, built on the meta device: nothing is allocated for a config whose
    sizes do not match its weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    for name in (MODEL, CONFIG):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} is not a checkpoint: {name} is missing")
    config, data, header = _read_pair(directory)
    try:
        cfg = registry.config_from_dict(config["model"], config["config"])
        with torch.device("meta"):  # sizes only: no memory, however large the config says
            probe = registry.build(config["model"], cfg)
    except (ValueError, TypeError, RuntimeError, OverflowError) as err:
        raise CheckpointError(f"{directory / CONFIG} is corrupt: {err}") from None
    want = {k: list(v.shape) for k, v in _own_state(probe).items()}
    found = {k: v.get("shape") if isinstance(v, dict) else v for k, v in header.items()}
    found.pop("__metadata__", None)
    if want != found:
        bad = next(k for k in sorted(set(want) | set(found)) if want.get(k) != found.get(k))
        raise CheckpointError(
            f"{directory / MODEL} does not match its config: {bad} is "
            f"{found.get(bad, 'missing')} in the file, {want.get(bad, 'absent')} in the model"
        )
    model = registry.build(config["model"], cfg)
    try:
        missing, unexpected = model.load_state_dict(load_bytes(data), strict=False)
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{directory / MODEL} is corrupt or does not match: {err}") from None
    aliases = set(model.state_dict()) - set(_own_state(model))  # tied: loaded with their owner
    if unexpected or set(missing) - aliases:
        lost = sorted(set(missing) - aliases)
        raise CheckpointError(f"{MODEL} does not match: missing {lost}, unexpected {unexpected}")
    broken = [
        k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if broken:  # a run that diverged, or a damaged file: every output would be NaN
        raise CheckpointError(
            f"{directory / MODEL} holds weights that are not finite (NaN or inf) in "
            f"{len(broken)} tensor(s), first {broken[0]}"
        )
    return model.eval(), config


def _own_state(model: torch.nn.Module) -> dict:
    """The state dict without second names of shared (tied) parameters, which safetensors
    cannot store twice; loading the first name fills both."""
    state = model.state_dict()
    kept = {n for n, _ in model.named_parameters()}  # one name per parameter object
    every = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    return {k: v for k, v in state.items() if k in kept or k not in every}


def save_trainer(directory: str | Path, state: dict[str, Any]) -> None:
    _atomic(Path(directory) / TRAINER, lambda p: torch.save(state, p))


def load_trainer(directory: str | Path) -> dict[str, Any] | None:
    """The trainer state, or None when there is none yet."""
    path = Path(directory) / TRAINER
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True, map_location="cpu")  # any device resumes
    except Exception as err:  # torch's message runs to paragraphs: its first line is enough
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise CheckpointError(
            f"{path} is corrupt or not a trainer state attnkit wrote (nothing in it was run): "
            f"{first[:200]}"
        ) from None
