"""Reference models built from attnkit layers."""

from .seq2seq import ATTENTIONS, PRESETS, Seq2Seq, Seq2SeqConfig

__all__ = ["ATTENTIONS", "PRESETS", "Seq2Seq", "Seq2SeqConfig"]
