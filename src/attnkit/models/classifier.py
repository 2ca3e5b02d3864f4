"""A text classifier whose pooling is chosen by name, registered as "text-classifier".

Tokens are embedded and read by a bidirectional GRU; the states are pooled into one vector
(:class:`~attnkit.models.pooling.Pooling`: "attention" (Raffel & Ellis), "gate", "mean",
"max", "last"; or "self-attention": :class:`~attnkit.layers.SelfAttention` over the states,
then attention pooling), which a linear layer scores. With pooling "han" the input is a
document of sentences and :class:`~attnkit.layers.HierarchicalAttention` (Yang et al. 2016)
does both the reading and the pooling.

Inputs: ``ids`` (B, T) with ``lengths`` (B,), or for "han" ``ids`` (B, S, W) with
``lengths`` (B, S) words per sentence. ``return_weights`` adds the weights that the pooling
has: (B, T) per token, or for "han" the (word (B, S, W), sentence (B, S)) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._ext.tracing import tracing
from ..layers import HierarchicalAttention, SelfAttention
from ..layers.base import check_lengths, check_sizes
from .pooling import POOLINGS, Pooling
from .registry import register

CLASSIFIER_POOLINGS = (*POOLINGS, "self-attention", "han")


@dataclass
class TextClassifierConfig:
    vocab_size: int = 1000
    classes: int = 2
    embed_dim: int = 64
    hidden_dim: int = 64  # GRU state per direction
    pooling: str = "attention"
    attention_dim: int = 64  # HAN's context vectors
    dropout: float = 0.2
    pad_id: int = 0


@register("text-classifier", TextClassifierConfig)
class TextClassifier(nn.Module):
    """Example:

    >>> m = TextClassifier(TextClassifierConfig(vocab_size=50, pooling="han"))
    >>> logits, (words, sentences) = m(torch.randint(1, 50, (2, 3, 4)),
    ...                                torch.tensor([[4, 2, 0], [3, 3, 1]]), return_weights=True)
    >>> logits.shape, words.shape, sentences.shape
    (torch.Size([2, 2]), torch.Size([2, 3, 4]), torch.Size([2, 3]))
    """

    def __init__(self, cfg: TextClassifierConfig) -> None:
        super().__init__()
        check_sizes(
            "TextClassifier",
            vocab_size=cfg.vocab_size,
            classes=cfg.classes,
            embed_dim=cfg.embed_dim,
            hidden_dim=cfg.hidden_dim,
            attention_dim=cfg.attention_dim,
        )
        if cfg.pooling not in CLASSIFIER_POOLINGS:
            raise ValueError(
                f"unknown pooling {cfg.pooling!r}; expected one of {', '.join(CLASSIFIER_POOLINGS)}"
            )
        if not 0 <= cfg.pad_id < cfg.vocab_size:
            raise ValueError(f"pad_id must be in 0..{cfg.vocab_size - 1}, got {cfg.pad_id}")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.drop = nn.Dropout(cfg.dropout)
        states = 2 * cfg.hidden_dim
        if cfg.pooling == "han":
            self.han = HierarchicalAttention(cfg.embed_dim, cfg.hidden_dim, cfg.attention_dim)
        else:
            self.rnn = nn.GRU(cfg.embed_dim, cfg.hidden_dim, batch_first=True, bidirectional=True)
            self.self_attention = (
                SelfAttention(states, "multiplicative") if cfg.pooling == "self-attention" else None
            )
            kind = "attention" if cfg.pooling == "self-attention" else cfg.pooling
            self.pool = Pooling(kind, states)
        self.head = nn.Linear(states, cfg.classes)

    def forward(
        self,
        ids: Tensor,
        lengths: Tensor,
        *,
        return_weights: bool = False,
        embeddings: Tensor | None = None,
    ):
        """``embeddings`` (ids' shape + (embed_dim,)) are read instead of the ids' embeddings:
        integrated gradients interpolates them. The ids still give the padding."""
        if ids.dtype != torch.long:
            raise ValueError(f"ids must be int64 token ids, got {ids.dtype}")
        if not tracing() and ((ids < 0).any() or (ids >= self.cfg.vocab_size).any()):
            raise ValueError(f"token ids must be in 0..{self.cfg.vocab_size - 1}")
        if self.cfg.pooling == "han":
            if ids.dim() != 3:
                raise ValueError(f"han reads documents (B, S, W), got {tuple(ids.shape)}")
            out = self.han(self.drop(self._embedded(ids, embeddings)), lengths)
            pooled, weights = out.context, (out.word_weights, out.sentence_weights)
        else:
            if ids.dim() != 2 or lengths.shape != ids.shape[:1]:
                raise ValueError(
                    f"expected ids (B, T) and lengths (B,), got "
                    f"{tuple(ids.shape)} and {tuple(lengths.shape)}"
                )
            check_lengths(lengths, ids.shape[1])
            h = self._read(self.drop(self._embedded(ids, embeddings)), lengths)
            if self.self_attention is not None:
                h = h + self.self_attention(h, lengths=lengths).context
            pooled, weights = self.pool(h, lengths)
        logits = self.head(self.drop(pooled))
        return (logits, weights) if return_weights else logits

    def _embedded(self, ids: Tensor, embeddings: Tensor | None) -> Tensor:
        if embeddings is None:
            return self.embed(ids)
        if embeddings.shape != (*ids.shape, self.cfg.embed_dim):
            raise ValueError(
                f"embeddings must be {(*ids.shape, self.cfg.embed_dim)}, got "
                f"{tuple(embeddings.shape)}"
            )
        return embeddings

    def _read(self, x: Tensor, lengths: Tensor) -> Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def loss(self, batch) -> Tensor:
        """Cross-entropy on a batch with ``ids``, ``lengths`` and ``y`` (B,) class ids."""
        return F.cross_entropy(self(batch.ids, batch.lengths), batch.y)
