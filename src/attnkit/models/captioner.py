"""A captioner in the manner of Show, Attend and Tell (Xu et al. 2015, arXiv:1502.03044),
registered as "captioner": it writes a token sequence about an image while it attends, softly,
over the regions of the image's convolutional feature grid.

- The encoder is the image models' :class:`~attnkit.models.vision.ConvStages` (with the same
  choice of none / SE / CBAM blocks). Each cell of its last map (H', W') is one annotation
  vector a_i; the cell's centre, as (row, column) in [-1, 1], is appended to it, so the
  attention can tell the regions apart by place as well as by content.
- The decoder is an LSTM whose initial state is an MLP of the mean annotation (the paper's
  f_init). At step t, additive attention (:class:`~attnkit.layers.AdditiveAttention`, the
  keys projected once per image) scores every region from h_{t-1}; the context
  z_t = sum_i alpha_ti a_i is scaled by the gate beta_t = sigmoid(f_beta(h_{t-1})) (section
  4.2.1) and read with the embedding of the previous token; the "deep output" reads the
  embedding, h_t and z_t. Padding and start of sequence are never written (their logits are
  -inf), so every step writes a token or ends the caption.
- ``doubly_stochastic`` = lambda adds the paper's regulariser lambda * sum_i (1 - sum_t
  alpha_ti)^2 (eq. 14), which asks every region to be looked at about once over the caption
  (off by default: it pulls towards spread-out maps when captions are much shorter than the
  grid has cells).

Decoding goes through :mod:`attnkit.models.decoding` (``start(images, None)`` / ``step``); each
step's weights come back as (B, H', W'), a distribution over the grid.

>>> m = Captioner(CaptionerConfig(vocab_size=13))
>>> from attnkit.models.decoding import greedy
>>> out = greedy(m, torch.rand(2, 1, 8, 40), None)
>>> out.weights.shape[0], tuple(out.weights.shape[2:])
(2, (2, 10))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import AdditiveAttention
from ..layers.base import check_sizes
from .registry import register
from .vision import ConvStages


@dataclass
class CaptionerConfig:
    vocab_size: int = 13
    in_channels: int = 1
    widths: tuple[int, ...] = (32, 64)  # the encoder's stages
    block: str = "none"  # none, se or cbam in every stage
    reduction: int = 8
    spatial_kernel: int = 3
    embed_dim: int = 32
    hidden_dim: int = 128  # the LSTM's
    attention_dim: int = 64  # the additive attention's hidden size
    dropout: float = 0.1
    doubly_stochastic: float = 0.0  # lambda of the attention regulariser (0: off)
    max_output_len: int = 8
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2


@dataclass
class CaptionState:
    annotations: Tensor  # (B, L, D): the grid's cells, with their coordinates
    keys: Tensor  # (B, L, attention_dim): U a_i, projected once
    hidden: Tensor  # (B, H)
    cell: Tensor  # (B, H)
    grid: tuple[int, int]  # (H', W')


@register("captioner", CaptionerConfig)
class Captioner(nn.Module):
    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        check_sizes(
            "Captioner",
            vocab_size=cfg.vocab_size,
            embed_dim=cfg.embed_dim,
            hidden_dim=cfg.hidden_dim,
            attention_dim=cfg.attention_dim,
            max_output_len=cfg.max_output_len,
        )
        if cfg.doubly_stochastic < 0:
            raise ValueError(f"doubly_stochastic must be >= 0, got {cfg.doubly_stochastic}")
        self.cfg = cfg
        self.encoder = ConvStages(
            cfg.in_channels, cfg.widths, cfg.block, cfg.reduction, cfg.spatial_kernel
        )
        d = tuple(cfg.widths)[-1] + 2  # features and the cell's (row, column)
        h = cfg.hidden_dim
        self.init_h, self.init_c = nn.Linear(d, h), nn.Linear(d, h)
        self.attention = AdditiveAttention(h, d, cfg.attention_dim)
        self.gate = nn.Linear(h, 1)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTMCell(cfg.embed_dim + d, h)
        self.out_h, self.out_z = nn.Linear(h, cfg.embed_dim), nn.Linear(d, cfg.embed_dim)
        self.out = nn.Linear(cfg.embed_dim, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        never = torch.tensor([cfg.pad_id, cfg.bos_id])  # ids no step writes
        self.register_buffer("never", never, persistent=False)

    def annotate(self, images: Tensor, return_weights: bool = False):
        """(annotations (B, H' * W', C + 2), (H', W'), the encoder's block maps)."""
        x, maps = self.encoder.features(images, return_weights)
        b, _, gh, gw = x.shape
        rows = torch.linspace(-1, 1, gh, device=x.device) if gh > 1 else x.new_zeros(1)
        cols = torch.linspace(-1, 1, gw, device=x.device) if gw > 1 else x.new_zeros(1)
        place = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).to(x.dtype)
        x = torch.cat([x, place.expand(b, -1, -1, -1)], 1)
        return x.flatten(2).transpose(1, 2), (gh, gw), maps

    def start(self, src: Tensor, src_len: Tensor | None = None) -> CaptionState:
        """Encode images (B, C, H, W) once (``src_len`` is not used: every image is whole)."""
        ann, grid, _ = self.annotate(src)
        mean = ann.mean(1)
        return CaptionState(
            ann,
            self.attention.project_keys(ann),
            torch.tanh(self.init_h(mean)),
            torch.tanh(self.init_c(mean)),
            grid,
        )

    def step(self, tokens: Tensor, state: CaptionState, t: int = 0):
        """(logits (B, V), next state, weights (B, H', W')) after the previous tokens (B,)."""
        s = state
        out = self.attention(s.hidden, s.annotations, projected_keys=s.keys)
        z = torch.sigmoid(self.gate(s.hidden)) * out.context  # beta_t z_t
        emb = self.drop(self.embed(tokens))
        hidden, cell = self.lstm(torch.cat([emb, z], -1), (s.hidden, s.cell))
        logits = self.out(self.drop(emb + self.out_h(hidden) + self.out_z(z)))
        logits = logits.index_fill(1, self.never, float("-inf"))  # padding, start
        weights = out.weights.reshape(-1, *s.grid)
        return logits, CaptionState(s.annotations, s.keys, hidden, cell, s.grid), weights

    def forward(self, images: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing: (logits (B, T, V) for tgt[:, t] from tgt[:, :t], weights
        (B, T, H', W'))."""
        state = self.start(images)
        y_prev = torch.full_like(tgt[:, 0], self.cfg.bos_id)
        logits, weights = [], []
        for t in range(tgt.shape[1]):
            out, state, w = self.step(y_prev, state, t)
            logits.append(out)
            weights.append(w)
            y_prev = tgt[:, t]
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def loss(self, batch) -> Tensor:
        """Mean cross-entropy over real target positions of a batch with ``x`` (B, C, H, W)
        and ``tgt`` (B, T) (ids, end of sequence, padding), plus the doubly stochastic
        regulariser where it is on."""
        logits, weights = self(batch.x, batch.tgt)
        loss = F.cross_entropy(
            logits.flatten(0, 1), batch.tgt.flatten(), ignore_index=self.cfg.pad_id
        )
        lam = self.cfg.doubly_stochastic
        if lam:
            real = (batch.tgt != self.cfg.pad_id).to(weights.dtype)[:, :, None, None]
            seen = (weights * real).sum(1)  # (B, H', W'): sum over the caption's steps
            loss = loss + lam * ((1 - seen) ** 2).flatten(1).sum(1).mean()
        return loss
