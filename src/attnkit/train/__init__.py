"""The generic trainer and checkpoints (see ``loop`` for what it asks of models and tasks)."""

from .checkpoint import CheckpointError, load_model, read_config, save_model
from .devices import use as use_device
from .loop import Data, Task, Trainable, TrainConfig, epoch_seed, fit, shuffled

__all__ = [
    "CheckpointError",
    "Data",
    "Task",
    "Trainable",
    "TrainConfig",
    "epoch_seed",
    "fit",
    "load_model",
    "read_config",
    "save_model",
    "shuffled",
    "use_device",
]
