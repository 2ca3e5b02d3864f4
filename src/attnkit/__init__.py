"""attnkit: attention mechanisms for PyTorch in one consistent, tested API.

Conventions: batch first; boolean masks are True = may attend; causal masks align
bottom-right; fully-masked queries get context 0. See the README for every family.
"""

from .functional import AdditiveParams, AttentionOutput, attend, masked_softmax, masks
from .layers import (
    CBAM,
    AdditiveAttention,
    AttentionGate,
    FeedForwardAttention,
    HierarchicalAttention,
    KVCache,
    LinearAttention,
    LinearState,
    LocalAttention,
    LocationAttention,
    MultiHeadAttention,
    MultiplicativeAttention,
    SelfAttention,
    SpatialAttention,
    SqueezeExcite,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)

__version__ = "0.1.0"

__all__ = [
    "CBAM",
    "AdditiveAttention",
    "AdditiveParams",
    "AttentionGate",
    "AttentionOutput",
    "FeedForwardAttention",
    "HierarchicalAttention",
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
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "__version__",
    "attend",
    "masked_softmax",
    "masks",
]
