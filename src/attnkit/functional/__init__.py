"""Pure tensor functions (no parameters): masks, scores, masked softmax and ``attend``."""

from . import masks, scores
from .attend import ENV_IMPL, attend
from .output import AttentionOutput
from .scores import AdditiveParams
from .softmax import masked_softmax

__all__ = [
    "ENV_IMPL",
    "AdditiveParams",
    "AttentionOutput",
    "attend",
    "masked_softmax",
    "masks",
    "scores",
]
