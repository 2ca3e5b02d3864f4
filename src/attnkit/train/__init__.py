"""Training, evaluation and checkpoints for the reference models."""

from .checkpoint import CheckpointError, load_model, save_model
from .loop import TrainConfig, evaluate, fit, predict

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_model",
    "predict",
    "save_model",
]
