"""Reference models built from attnkit layers, registered by name.

``build(name, config)`` makes a model from its config dataclass (or a dict of it); a
checkpoint stores the name and the config. Decoding (greedy, beam) is shared: ``decoding``.
"""

from . import decoding
from .captioner import Captioner, CaptionerConfig, CaptionState
from .classifier import CLASSIFIER_POOLINGS, TextClassifier, TextClassifierConfig
from .decoder_only import DecoderOnly, DecoderOnlyConfig
from .pooling import POOLINGS, Pooling, RaffelConfig, RaffelEllis
from .registry import (
    Variant,
    build,
    config_from_dict,
    entry,
    name_of,
    names,
    register,
    register_variant,
    variants,
)
from .rnn_lm import CharLSTM, CharLSTMConfig
from .seq2seq import ATTENTIONS, PRESETS, Seq2Seq, Seq2SeqConfig, Seq2SeqState
from .series import (
    SERIES_MODELS,
    SeriesAttention,
    SeriesAttentionConfig,
    SeriesCNN,
    SeriesLinear,
    SeriesLSTM,
    SeriesMLP,
)
from .transformer import Transformer, TransformerConfig, TransformerState, TransformerWeights
from .vision import BLOCKS, ImageClassifier, ImageClassifierConfig

__all__ = [
    "ATTENTIONS",
    "BLOCKS",
    "CLASSIFIER_POOLINGS",
    "CaptionState",
    "Captioner",
    "CaptionerConfig",
    "ImageClassifier",
    "ImageClassifierConfig",
    "POOLINGS",
    "PRESETS",
    "Pooling",
    "RaffelConfig",
    "RaffelEllis",
    "CharLSTM",
    "CharLSTMConfig",
    "DecoderOnly",
    "DecoderOnlyConfig",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqState",
    "SERIES_MODELS",
    "SeriesAttention",
    "SeriesAttentionConfig",
    "SeriesCNN",
    "SeriesLSTM",
    "SeriesLinear",
    "SeriesMLP",
    "TextClassifier",
    "TextClassifierConfig",
    "Transformer",
    "TransformerConfig",
    "TransformerState",
    "TransformerWeights",
    "Variant",
    "build",
    "config_from_dict",
    "decoding",
    "entry",
    "name_of",
    "names",
    "register",
    "register_variant",
    "variants",
]
