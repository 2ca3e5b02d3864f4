"""A character LSTM language model: the recurrent baseline of the decoder-only Transformer.

Embedding -> ``layers`` LSTM layers (dropout between them in training) -> a linear layer to the
vocabulary. Its state (h, c) plays the part of the Transformer's KV cache: ``generate`` feeds
the prompt once and then each new token alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoding import IncrementalLM
from .registry import register


@dataclass
class CharLSTMConfig:
    """The only source of the LSTM language model's defaults."""

    vocab_size: int
    embed_dim: int = 128
    hidden_dim: int = 512
    layers: int = 2
    dropout: float = 0.1  # between LSTM layers and before the output, training only
    pad_id: int = 0
    max_len: int = 1024  # the longest sequence generate accepts (an RNN has no hard limit)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden_dim", "layers", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be an id below {self.vocab_size}")

    def to_dict(self) -> dict:
        return asdict(self)


@register("lstm-lm", CharLSTMConfig)
class CharLSTM(IncrementalLM, nn.Module):
    """LSTM language model. ids (B, T) -> logits (B, T, V) for the token after each position.

    Example:
        >>> lm = CharLSTM(CharLSTMConfig(vocab_size=20, embed_dim=8, hidden_dim=16)).eval()
        >>> lm(torch.tensor([[3, 4, 5]])).shape
        torch.Size([1, 3, 20])
        >>> lm.generate(torch.tensor([[3, 4]]), 5).shape
        torch.Size([1, 7])
    """

    def __init__(self, cfg: CharLSTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = nn.LSTM(
            cfg.embed_dim,
            cfg.hidden_dim,
            cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)

    def forward(
        self, ids: Tensor, state: tuple[Tensor, Tensor] | None = None, *, return_state: bool = False
    ):
        if ids.dim() != 2 or ids.dtype != torch.long or ids.shape[1] < 1:
            raise ValueError(
                f"ids must be (B, T) int64 with T >= 1, got {tuple(ids.shape)} {ids.dtype}"
            )
        h, state = self.lstm(self.embed(ids), state)
        logits = self.out(self.drop(h))
        return (logits, state) if return_state else logits

    def loss(self, batch) -> Tensor:
        """Next-token cross-entropy over a batch with ``tokens`` (B, T) (padding ignored)."""
        tokens = batch.tokens
        logits = self(tokens[:, :-1])
        return F.cross_entropy(
            logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=self.cfg.pad_id
        )

    def empty_state(self, capacity: int | None = None) -> None:
        """The state before any token: none (the LSTM starts from zeros)."""
        return None

    def advance(
        self, ids: Tensor, state: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The incremental call of generation: ``ids`` (B, T) after ``state`` -> (logits
        (B, V) of the token after them, the LSTM's (h, c))."""
        logits, state = self(ids, state, return_state=True)
        return logits[:, -1], state
