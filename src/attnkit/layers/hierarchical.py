"""Hierarchical attention (HAN), Yang et al. 2016, "Hierarchical Attention Networks for
Document Classification" (NAACL):

    h_it = BiGRU(words of sentence i)_t,  u_it = tanh(W_w h_it + b_w),
    a_it = softmax_t(u_it^T u_w),  s_i = sum_t a_it h_it               (word level)
    h_i = BiGRU(s_1 .. s_L)_i,  u_i = tanh(W_s h_i + b_s),
    a_i = softmax_i(u_i^T u_s),  v = sum_i a_i h_i                     (sentence level)

Each pooling step is :class:`~attnkit.layers.FeedForwardAttention` with a hidden layer (its
output vector is the learned context vector u_w or u_s).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import check_dtype, check_sizes
from .pooling import FeedForwardAttention


@dataclass
class HierarchicalOutput:
    """context (B, 2 hidden); word_weights (B, S, W), 0 on padded words and on every word of
    a padded sentence; sentence_weights (B, S), 0 on padded sentences."""

    context: Tensor
    word_weights: Tensor
    sentence_weights: Tensor

    def __iter__(self):
        yield self.context
        yield self.word_weights
        yield self.sentence_weights


class HierarchicalAttention(nn.Module):
    """Word encoder and attention pooling into sentence vectors, then sentence encoder and
    attention pooling into one document vector.

    Shapes: words (B, S, W, E) embedded words, S sentences of up to W words; ``word_lengths``
    (B, S) the real words of each sentence (0 for a padded sentence; sentences with words come
    first). Returns :class:`HierarchicalOutput`. A document's padded words and sentences change
    nothing; a document without any word gets context 0.

    Example:
        >>> han = HierarchicalAttention(8, hidden_dim=6, attention_dim=5)
        >>> out = han(torch.randn(2, 3, 4, 8), torch.tensor([[4, 2, 0], [1, 0, 0]]))
        >>> out.context.shape, out.word_weights.shape, out.sentence_weights.shape
        (torch.Size([2, 12]), torch.Size([2, 3, 4]), torch.Size([2, 3]))
        >>> out.sentence_weights[1].tolist()
        [1.0, 0.0, 0.0]
    """

    def __init__(self, embed_dim: int, hidden_dim: int = 50, attention_dim: int = 100) -> None:
        super().__init__()
        check_sizes(
            "HierarchicalAttention",
            embed_dim=embed_dim,
            hidden_dim=hidden_dim,
            attention_dim=attention_dim,
        )
        self.embed_dim, self.hidden_dim = embed_dim, hidden_dim
        self.word_rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.word_attention = FeedForwardAttention(2 * hidden_dim, attention_dim)
        self.sentence_rnn = nn.GRU(2 * hidden_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.sentence_attention = FeedForwardAttention(2 * hidden_dim, attention_dim)

    def forward(self, words: Tensor, word_lengths: Tensor) -> HierarchicalOutput:
        """Word-level, then sentence-level attention pooling (Yang et al. 2016).

        Args:
            words: (B, S, W, E), the embedded words of S sentences of up to W words.
            word_lengths: (B, S) integer, real words per sentence (0 for a padding sentence).

        Returns:
            HierarchicalOutput: the document vector (B, 2 * hidden), the word weights (B, S, W) and
            the sentence weights (B, S).

        Raises:
            ValueError: for shapes or dtypes that do not fit."""
        if words.dim() != 4 or words.shape[-1] != self.embed_dim:
            raise ValueError(f"words must be (B, S, W, {self.embed_dim}), got {tuple(words.shape)}")
        b, s, w, _ = words.shape
        if word_lengths.shape != (b, s) or word_lengths.is_floating_point():
            raise ValueError(
                f"word_lengths must be integer (B, S) = ({b}, {s}), got "
                f"{word_lengths.dtype} {tuple(word_lengths.shape)}"
            )
        if (word_lengths < 0).any() or (word_lengths > w).any():
            raise ValueError(f"word_lengths must be in 0..{w}")
        check_dtype(self, words=words)
        if b * s * w == 0:  # no documents, or none with a word: nothing to attend to
            size = 2 * self.word_rnn.hidden_size
            zeros = words.new_zeros
            return HierarchicalOutput(zeros(b, size), zeros(b, s, w), zeros(b, s))
        real_sentences = word_lengths > 0  # (B, S)
        counts = real_sentences.sum(1)  # (B,)
        if (real_sentences.long().diff(dim=1) > 0).any():
            raise ValueError("sentences with words must come before padded (empty) ones")
        flat = word_lengths.reshape(-1)
        h = _encode(self.word_rnn, words.reshape(b * s, w, -1), flat)  # (B*S, W, 2H)
        real_words = torch.arange(w, device=words.device)[None, :] < flat[:, None]
        word = self.word_attention(h, mask=real_words)  # all-masked rows: context and weights 0
        sentences = word.context.view(b, s, -1)
        hs = _encode(self.sentence_rnn, sentences, counts)  # (B, S, 2H)
        doc = self.sentence_attention(hs, mask=real_sentences)
        return HierarchicalOutput(doc.context, word.weights.view(b, s, w), doc.weights)


def _encode(rnn: nn.GRU, x: Tensor, lengths: Tensor) -> Tensor:
    """The bidirectional GRU over the first ``lengths`` steps of each row (packed, so the
    backward direction starts at each row's own end); zeros past them and on empty rows."""
    n, t, _ = x.shape
    packed = pack_padded_sequence(
        x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
    )
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)
    return out * (lengths > 0)[:, None, None].to(out.dtype)
