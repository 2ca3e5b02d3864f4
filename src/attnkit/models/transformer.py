"""Encoder-decoder Transformer (Vaswani et al. 2017, arXiv:1706.03762) on attnkit's blocks.

Tokens are embedded (scaled by sqrt(d_model)), given positions (sinusoidal, learned, or rotary
inside every self-attention), run through ``encoder_layers`` encoder blocks and
``decoder_layers`` decoder blocks (pre-norm by default, each stack then a final LayerNorm; or
post-norm), and projected to the target vocabulary (optionally with the target embedding's
weights, ``tie_embeddings``).

Decoding goes through ``attnkit.models.decoding`` (greedy, beam) with ``start`` / ``step``:
``start`` encodes once and makes an empty :class:`DecoderCache` per decoder layer; ``step``
feeds only the newest token, so each step costs one token's attention over the cached keys, and
the result equals recomputing the prefix (tested). The weights a step reports, for heatmaps,
are the last decoder layer's cross-attention averaged over heads, (B, S);
``forward(..., return_weights=True)`` gives every layer's and head's self- and cross-attention.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.transformer import (
    DecoderCache,
    LearnedPositions,
    SinusoidalPositions,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)
from .registry import register

POSITIONS = ("sinusoidal", "learned", "rotary")
MAX_LEN = 1 << 14  # the longest sequence a config may ask positions for


def check_stack_config(cfg, sizes: tuple[str, ...]) -> None:
    """The checks every Transformer config shares: ``positions``, ``ff_dim`` (None -> 4 *
    d_model), positive ints (``sizes`` plus the widths and max_len), heads dividing the width,
    max_len and dropout in range. ValueError naming the field."""
    if cfg.positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {cfg.positions!r}")
    if cfg.ff_dim is None:
        cfg.ff_dim = 4 * cfg.d_model
    for name in (*sizes, "d_model", "num_heads", "ff_dim", "max_len"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if cfg.d_model % cfg.num_heads:
        raise ValueError(
            f"d_model ({cfg.d_model}) must be divisible by num_heads ({cfg.num_heads})"
        )
    if cfg.max_len > MAX_LEN:
        raise ValueError(f"max_len must be <= {MAX_LEN}, got {cfg.max_len}")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")


def selected_layers(layers, count: int) -> set[int]:
    """The layer indices ``layers`` names (all for None; negative counts from the end);
    ValueError for one out of range."""
    if layers is None:
        return set(range(count))
    chosen = set()
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int) or not -count <= i < count:
            raise ValueError(f"layer {i!r} is out of range for {count} layers")
        chosen.add(i % count)
    return chosen


@dataclass
class TransformerConfig:
    """The only source of the Transformer's defaults."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    ff_dim: int | None = None  # None: 4 * d_model
    dropout: float = 0.1  # training only
    activation: str = "gelu"
    norm_first: bool = True  # pre-norm; False: the paper's post-norm
    positions: str = "sinusoidal"  # one of POSITIONS
    tie_embeddings: bool = False  # output projection shares the target embedding's weights
    max_len: int = 512  # the longest input or output positions are made for
    max_output_len: int = 40  # decoding stops here if no end-of-sequence came
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        check_stack_config(
            self,
            (
                "src_vocab_size",
                "tgt_vocab_size",
                "max_output_len",
                "encoder_layers",
                "decoder_layers",
            ),
        )
        if self.max_output_len >= self.max_len:
            raise ValueError(
                f"need max_output_len < max_len, got {self.max_output_len} and {self.max_len}"
            )
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"{name} must be a target id below {self.tgt_vocab_size}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TransformerState:
    """What decoding carries: the encoder output, its lengths and one cache per decoder layer."""

    memory: Tensor  # (B, S, E)
    src_len: Tensor  # (B,)
    caches: list[DecoderCache]


@dataclass
class TransformerWeights:
    """Every layer's attention, (B, H, T, Tk) each: encoder self, decoder self, cross."""

    encoder: list[Tensor]
    decoder_self: list[Tensor]
    cross: list[Tensor]


@register("transformer", TransformerConfig)
class Transformer(nn.Module):
    """Encoder-decoder Transformer; see the module docstring.

    Shapes: src (B, S) padded ids, src_len (B,), tgt (B, T) ids ending in end-of-sequence.
    ``forward`` returns teacher-forced logits (B, T, V) (and TransformerWeights on request).

    Example:
        >>> from attnkit.models import build, decoding
        >>> model = build("transformer", dict(src_vocab_size=12, tgt_vocab_size=9, d_model=16,
        ...                                   num_heads=2, max_output_len=5)).eval()
        >>> out = decoding.greedy(model, torch.randint(3, 12, (2, 7)), torch.tensor([7, 4]))
        >>> out.weights.shape[0], out.weights.shape[2]  # (B, steps, S)
        (2, 7)
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.src_embed = nn.Embedding(cfg.src_vocab_size, d, padding_idx=cfg.pad_id)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, d, padding_idx=cfg.pad_id)
        for table in (self.src_embed, self.tgt_embed):
            # N(0, 1/d): times sqrt(d) in _embed, unit scale like the positions (section 3.4);
            # N(0, 1) would make them 11x the sinusoids at d=128 and drown word order
            nn.init.normal_(table.weight, std=d**-0.5)
            with torch.no_grad():
                table.weight[cfg.pad_id].zero_()
        rotary = cfg.positions == "rotary"
        self.positions = (
            None
            if rotary
            else SinusoidalPositions(d, cfg.max_len)
            if cfg.positions == "sinusoidal"
            else LearnedPositions(d, cfg.max_len)
        )
        block: dict[str, Any] = dict(
            num_heads=cfg.num_heads,
            ff_dim=cfg.ff_dim,
            dropout=cfg.dropout,
            activation=cfg.activation,
            norm_first=cfg.norm_first,
            rotary=rotary,
        )
        self.encoder = nn.ModuleList(
            TransformerEncoderLayer(d, **block) for _ in range(cfg.encoder_layers)
        )
        self.decoder = nn.ModuleList(
            TransformerDecoderLayer(d, **block) for _ in range(cfg.decoder_layers)
        )
        norm = nn.LayerNorm if cfg.norm_first else nn.Identity  # pre-norm stacks end in one
        self.encoder_norm, self.decoder_norm = norm(d), norm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(d, cfg.tgt_vocab_size)
        if cfg.tie_embeddings:
            self.out.weight = self.tgt_embed.weight

    def _embed(self, table: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        x = table(ids) * math.sqrt(self.cfg.d_model)
        if self.positions is not None:
            x = self.positions(x, offset)
        return self.drop(x)

    def _check_src(self, src: Tensor, src_len: Tensor) -> None:
        if src.dim() != 2 or src_len.shape != src.shape[:1]:
            raise ValueError(
                f"src must be (B, S) with src_len (B,), got {tuple(src.shape)} "
                f"and {tuple(src_len.shape)}"
            )
        if src.shape[1] > self.cfg.max_len:
            raise ValueError(f"inputs of {src.shape[1]} tokens exceed max_len {self.cfg.max_len}")

    def encode(
        self,
        src: Tensor,
        src_len: Tensor,
        return_weights: bool = False,
        *,
        layers=None,
        heads=None,
        rows=None,
    ):
        """(memory (B, S, E), encoder weights per layer or None); see ``forward`` for the
        selection arguments."""
        self._check_src(src, src_len)
        chosen = selected_layers(layers, len(self.encoder)) if return_weights else set()
        x, weights = self._embed(self.src_embed, src), []
        for i, layer in enumerate(self.encoder):
            out = layer(
                x,
                lengths=src_len,
                return_weights=i in chosen,
                weights_heads=heads,
                weights_rows=rows,
            )
            x = out.output
            weights.append(out.self_weights)
        return self.encoder_norm(x), (weights if return_weights else None)

    def _shifted(self, tgt: Tensor) -> Tensor:
        """The decoder's inputs for teacher forcing: start token, then tgt without its last."""
        bos = torch.full_like(tgt[:, :1], self.cfg.bos_id)
        return torch.cat([bos, tgt[:, :-1]], dim=1)

    def forward(
        self,
        src: Tensor,
        src_len: Tensor,
        tgt: Tensor,
        return_weights: bool = False,
        *,
        layers=None,
        heads=None,
        rows=None,
    ):
        """Teacher forcing: logits (B, T, V) for predicting tgt[:, t] from tgt[:, :t]; with
        ``return_weights`` also TransformerWeights, every layer's (B, H, T, Tk) weights.

        ``layers`` (indices, per stack), ``heads`` and ``rows`` (query positions) narrow what is
        computed and returned: unselected layers give None, the others (B, H', T', Tk)."""
        if tgt.shape[1] > self.cfg.max_len:
            raise ValueError(f"targets of {tgt.shape[1]} tokens exceed max_len {self.cfg.max_len}")
        memory, enc_w = self.encode(
            src, src_len, return_weights, layers=layers, heads=heads, rows=rows
        )
        chosen = selected_layers(layers, len(self.decoder)) if return_weights else set()
        x, self_w, cross_w = self._embed(self.tgt_embed, self._shifted(tgt)), [], []
        for i, layer in enumerate(self.decoder):
            out = layer(
                x,
                memory,
                memory_lengths=src_len,
                return_weights=i in chosen,
                weights_heads=heads,
                weights_rows=rows,
            )
            x = out.output
            self_w.append(out.self_weights)
            cross_w.append(out.cross_weights)
        logits = self.out(self.decoder_norm(x))
        return (logits, TransformerWeights(enc_w, self_w, cross_w)) if return_weights else logits

    def loss(self, batch) -> Tensor:
        """Mean cross-entropy over real target positions (``attnkit.tasks.PairBatch``)."""
        logits = self(batch.src, batch.src_len, batch.tgt)
        return F.cross_entropy(
            logits.flatten(0, 1), batch.tgt.flatten(), ignore_index=self.cfg.pad_id
        )

    # -- decoding protocol (see models/decoding.py) -------------------------------------------
    def start(self, src: Tensor, src_len: Tensor) -> TransformerState:
        memory, _ = self.encode(src, src_len)
        caches = [DecoderCache.empty() for _ in self.decoder]
        return TransformerState(memory, src_len.to(src.device), caches)

    def step(self, tokens: Tensor, state: TransformerState, t: int):
        """One token per row: (logits (B, V), next state, last layer's cross-attention averaged
        over heads (B, S)). The state passed in is left as it was (beam search may reuse it)."""
        # the tokens so far are the cached ones: the position, a size rather than a value
        # (an exported step graph reads it from its cache's shape)
        offset = state.caches[0].self_attn.length if state.caches else int(t)
        if offset >= self.cfg.max_len:
            raise ValueError(f"step {offset} is past max_len {self.cfg.max_len}")
        caches = [_copy(c) for c in state.caches]
        x = self._embed(self.tgt_embed, tokens[:, None], offset=offset)
        for layer, cache in zip(self.decoder, caches, strict=True):
            out = layer(
                x,
                state.memory,
                memory_lengths=state.src_len,
                cache=cache,
                return_weights=layer is self.decoder[-1],
            )
            x = out.output
        logits = self.out(self.decoder_norm(x))[:, 0]
        weights = out.cross_weights[:, :, 0].mean(1)  # (B, S)
        return logits, dataclasses.replace(state, caches=caches), weights


def _copy(cache: DecoderCache) -> DecoderCache:
    """A cache that appends without touching ``cache``'s own (shared, unchanged) tensors."""
    return DecoderCache(dataclasses.replace(cache.self_attn), dataclasses.replace(cache.cross_attn))
