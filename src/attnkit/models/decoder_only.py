"""A decoder-only (GPT-style) Transformer language model on attnkit's blocks.

Tokens are embedded, given positions (rotary by default, or sinusoidal / learned), run through
``layers`` causal self-attention blocks (pre-norm, then a final LayerNorm) and projected to the
vocabulary with the embedding's weights (``tie_embeddings``, as in Press & Wolf 2017).

``generate`` continues a prompt greedily or by sampling (temperature, top-k). With
``use_cache=True`` (the default) each new token runs through the blocks alone, its keys and
values appended to one :class:`KVCache` per layer; with ``use_cache=False`` the whole sequence
is run again for every token. Both give the same tokens and logits (tested); the cache makes
each step cost one token instead of the whole prefix (``benchmarks/generate_speed.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.multihead import KVCache
from ..layers.transformer import LearnedPositions, SinusoidalPositions, TransformerEncoderLayer
from .decoding import IncrementalLM
from .registry import register
from .transformer import check_stack_config, selected_layers


@dataclass
class DecoderOnlyConfig:
    """The only source of the decoder-only model's defaults."""

    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    layers: int = 4
    ff_dim: int | None = None  # None: 4 * d_model
    dropout: float = 0.1  # training only
    activation: str = "gelu"
    positions: str = "rotary"  # one of POSITIONS
    tie_embeddings: bool = True
    max_len: int = 1024  # the longest context
    pad_id: int = 0

    def __post_init__(self) -> None:
        check_stack_config(self, ("vocab_size", "layers"))
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be an id below {self.vocab_size}")

    def to_dict(self) -> dict:
        return asdict(self)


@register("decoder-only", DecoderOnlyConfig)
class DecoderOnly(IncrementalLM, nn.Module):
    """GPT-style language model; see the module docstring.

    Shapes: ids (B, T); ``forward`` returns logits (B, T, V) for the token after each position
    (and every layer's weights (B, H, T, T) with ``return_weights``).

    Example:
        >>> model = DecoderOnly(DecoderOnlyConfig(vocab_size=20, d_model=16, num_heads=2,
        ...                                       layers=2)).eval()
        >>> prompt = torch.tensor([[3, 4, 5]])
        >>> torch.equal(model.generate(prompt, 8), model.generate(prompt, 8, use_cache=False))
        True
    """

    def __init__(self, cfg: DecoderOnlyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.positions = (
            None
            if cfg.positions == "rotary"
            else SinusoidalPositions(d, cfg.max_len)
            if cfg.positions == "sinusoidal"
            else LearnedPositions(d, cfg.max_len)
        )
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(
                d,
                cfg.num_heads,
                cfg.ff_dim,
                cfg.dropout,
                cfg.activation,
                rotary=cfg.positions == "rotary",
            )
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(d, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.out.weight = self.embed.weight

    def forward(
        self,
        ids: Tensor,
        *,
        caches: list[KVCache] | None = None,
        return_weights: bool = False,
        layers=None,
        heads=None,
        rows=None,
    ):
        """Logits (B, T, V); with ``caches`` (one KVCache per block) ``ids`` are the tokens
        after the cached ones. ``return_weights`` adds each block's (B, H, T, T_seen) weights;
        ``layers``, ``heads`` and ``rows`` narrow them (unselected layers give None)."""
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be (B, T) int64, got {tuple(ids.shape)} {ids.dtype}")
        offset = caches[0].length if caches else 0  # a size: symbolic while traced
        if offset + ids.shape[1] > self.cfg.max_len:
            raise ValueError(f"{offset + ids.shape[1]} tokens exceed max_len {self.cfg.max_len}")
        x = self.embed(ids) * math.sqrt(self.cfg.d_model)
        if self.positions is not None:
            x = self.positions(x, offset)
        x, weights = (self.drop(x) if self.training else x), []
        chosen = selected_layers(layers, len(self.blocks)) if return_weights else set()
        for i, block in enumerate(self.blocks):
            out = block(
                x,
                causal=True,
                cache=caches[i] if caches else None,
                return_weights=i in chosen,
                weights_heads=heads,
                weights_rows=rows,
            )
            x = out.output
            weights.append(out.self_weights)
        logits = self.out(self.norm(x))
        return (logits, weights) if return_weights else logits

    def loss(self, batch) -> Tensor:
        """Next-token cross-entropy over a batch with ``tokens`` (B, T) (padding ignored)."""
        tokens = batch.tokens
        logits = self(tokens[:, :-1])
        return F.cross_entropy(
            logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=self.cfg.pad_id
        )

    def empty_state(self, capacity: int | None = None) -> list[KVCache]:
        """The state before any token: an empty KVCache per block (``capacity`` tokens of
        room reserved; None: each append concatenates, as a traced graph does)."""
        return [KVCache(capacity=capacity) for _ in self.blocks]

    def advance(self, ids: Tensor, caches: list[KVCache]) -> tuple[Tensor, list[KVCache]]:
        """The incremental call of generation: ``ids`` (B, T) after the cached tokens ->
        (logits (B, V) of the token after them, the caches, appended to)."""
        return self(ids, caches=caches)[:, -1], caches
