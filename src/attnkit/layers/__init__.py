"""nn.Modules with parameters; every attention layer returns ``AttentionOutput``."""

from .additive import AdditiveAttention
from .hierarchical import HierarchicalAttention, HierarchicalOutput
from .linear import LinearAttention, LinearState
from .local import LocalAttention
from .location import LocationAttention
from .multihead import KVCache, MultiHeadAttention
from .multiplicative import MultiplicativeAttention
from .pooling import AttentionGate, FeedForwardAttention
from .self_attention import SelfAttention
from .transformer import (
    BlockOutput,
    DecoderCache,
    LearnedPositions,
    RotaryEmbedding,
    SinusoidalPositions,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)
from .vision import CBAM, ChannelAttention, SpatialAttention, SqueezeExcite

__all__ = [
    "CBAM",
    "AdditiveAttention",
    "AttentionGate",
    "BlockOutput",
    "DecoderCache",
    "ChannelAttention",
    "FeedForwardAttention",
    "HierarchicalAttention",
    "HierarchicalOutput",
    "KVCache",
    "LearnedPositions",
    "LinearAttention",
    "LinearState",
    "LocalAttention",
    "LocationAttention",
    "MultiHeadAttention",
    "MultiplicativeAttention",
    "RotaryEmbedding",
    "SelfAttention",
    "SinusoidalPositions",
    "SpatialAttention",
    "SqueezeExcite",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
]
