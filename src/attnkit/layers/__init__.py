"""nn.Modules with parameters; every attention layer returns ``AttentionOutput``."""

from .additive import AdditiveAttention
from .linear import LinearAttention, LinearState
from .local import LocalAttention
from .location import LocationAttention
from .multihead import KVCache, MultiHeadAttention
from .multiplicative import MultiplicativeAttention
from .pooling import AttentionGate, FeedForwardAttention
from .self_attention import SelfAttention
from .vision import CBAM, ChannelAttention, SpatialAttention, SqueezeExcite

__all__ = [
    "CBAM",
    "AdditiveAttention",
    "AttentionGate",
    "ChannelAttention",
    "FeedForwardAttention",
    "KVCache",
    "LinearAttention",
    "LinearState",
    "LocalAttention",
    "LocationAttention",
    "MultiHeadAttention",
    "MultiplicativeAttention",
    "SelfAttention",
    "SpatialAttention",
    "SqueezeExcite",
]
