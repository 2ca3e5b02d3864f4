"""Character-level RNN encoder-decoder with attention.

Encoder: a bidirectional GRU over the input characters, h_i = [h->_i; h<-_i] (Bahdanau et al.
2014, section 3.2). Each direction reads a row only up to its own length, so padding is never
read. On a CPU both directions run in one call of the compiled recurrence of ``attnkit._ext.gru``
(several times faster than ``nn.GRU`` at these sizes); elsewhere, or without a C++ compiler, the
same ``nn.GRU`` modules run, the backward one over each row reversed within its length. With
``shared_encoder`` both directions use one GRU, told apart by a learned direction vector added
to the input.
Decoder: a GRU cell, one output character per step, with one of the attention kinds:

- "none": the Sutskever et al. 2014 / Cho et al. 2014 baseline: the context is one fixed
  summary of the input (the encoder's final states), the same at every step;
- "additive": Bahdanau et al. 2014: c_t = attend(s_{t-1}, h) before the state update,
  s_t = GRU([y_{t-1}; c_t], s_{t-1});
- "dot", "general", "scaled_dot", "local-m", "local-p", "location": Luong et al. 2015 with
  input feeding: s_t = GRU([y_{t-1}; h~_{t-1}], s_{t-1}), c_t = attend(s_t, h); "location"
  scores positions from s_t alone (a_t = softmax(W_a s_t), ``LocationAttention``);
- "fc-positions": the classic PyTorch seq2seq tutorial's attention, a fully connected layer
  from [y_{t-1}; s_{t-1}] to one logit per input position, before the state update:
  c_t = attend([y_{t-1}; s_{t-1}], h), s_t = GRU([y_{t-1}; c_t], s_{t-1}).
  Both position kinds read inputs of at most ``max_source_len`` characters.

Every kind then outputs h~_t = tanh(W_c [c_t; s_t]) and p(y_t) = softmax(W_s h~_t).

Decoding (greedy, beam) is ``attnkit.models.decoding``'s, through ``start`` and ``step``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._ext.gru import gru, gru_supported, stacked_weights
from ..layers import (
    AdditiveAttention,
    LocalAttention,
    LocationAttention,
    MultiplicativeAttention,
)
from .registry import register

ATTENTIONS = (
    "none",
    "additive",
    "dot",
    "general",
    "scaled_dot",
    "local-m",
    "local-p",
    "location",
    "fc-positions",
)
MAX_OUTPUT_LEN = 4096  # the most decoding steps a config may ask for
MAX_SIZE = 1 << 16  # the largest width or vocabulary a config may ask for


@dataclass
class Seq2SeqConfig:
    """The only source of the seq2seq model's defaults (``attnkit train`` uses them)."""

    src_vocab_size: int  # input tokens incl. the specials
    tgt_vocab_size: int  # output tokens incl. the specials
    attention: str = "additive"  # one of ATTENTIONS
    embed_dim: int = 32  # character embedding size (input and output)
    hidden_dim: int = 96  # decoder state; the encoder runs hidden_dim // 2 per direction
    attn_dim: int | None = None  # hidden size of the additive score; None: hidden_dim // 2
    local_width: int = 4  # D of local attention: the window is [p_t - D, p_t + D]
    dropout: float = 0.0  # on embeddings and h~_t, training only
    max_output_len: int = 40  # decoding stops here if no end-of-sequence came
    shared_encoder: bool = False  # one GRU for both directions (see the module docstring)
    max_source_len: int = 128  # the longest input "location" / "fc-positions" can score
    pad_id: int = 0  # special ids, from the vocabulary (CharVocab's by default)
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.hidden_dim < 2 or self.hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even and >= 2, got {self.hidden_dim}")
        if self.attn_dim is None:
            self.attn_dim = self.hidden_dim // 2
        for name in (
            "src_vocab_size",
            "tgt_vocab_size",
            "embed_dim",
            "attn_dim",
            "max_output_len",
            "max_source_len",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "embed_dim",
            "hidden_dim",
            "attn_dim",
            "src_vocab_size",
            "tgt_vocab_size",
            "max_source_len",
        ):
            if getattr(self, name) > MAX_SIZE:
                raise ValueError(f"{name} must be <= {MAX_SIZE}, got {getattr(self, name)}")
        if self.max_output_len > MAX_OUTPUT_LEN:  # decoding runs this many steps at most
            raise ValueError(
                f"max_output_len must be <= {MAX_OUTPUT_LEN}, got {self.max_output_len}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"{name} must be a target id below {self.tgt_vocab_size}")

    def to_dict(self) -> dict:
        return asdict(self)


# the fields of a sequence-to-sequence model's config (this one's and the Transformer's) that
# are set from the task's data (vocabularies, special ids, lengths), never by the user
DATA_FIELDS = frozenset(
    {
        "src_vocab_size",
        "tgt_vocab_size",
        "max_output_len",
        "pad_id",
        "bos_id",
        "eos_id",
        "max_source_len",
        "max_len",
    }
)
PRESETS = {
    "tiny": dict(embed_dim=16, hidden_dim=32, attn_dim=16),  # for tests: a model in a blink
}


@dataclass
class Seq2SeqState:
    """What decoding carries from step to step; every tensor has the batch first."""

    memory: Tensor  # encoder states h (B, S, H)
    mask: Tensor  # real input positions (B, S)
    summary: Tensor  # encoder final states (B, H): the context of attention="none"
    hidden: Tensor  # decoder state s_t (B, H)
    feed: Tensor  # attentional state h~_t (B, H), fed to the next step (Luong)
    keys: Tensor | None  # the additive score's U h, computed once per input (B, S, A)


def _attention_module(cfg: Seq2SeqConfig) -> nn.Module | None:
    h = cfg.hidden_dim
    kind = cfg.attention
    if kind == "none":
        return None
    if kind == "additive":
        return AdditiveAttention(h, h, cfg.attn_dim or h // 2)  # set in __post_init__
    if kind in ("dot", "general", "scaled_dot"):
        return MultiplicativeAttention(h, h, score=kind)
    if kind == "location":
        return LocationAttention(h, cfg.max_source_len)
    if kind == "fc-positions":
        return LocationAttention(cfg.embed_dim + h, cfg.max_source_len)
    mode = "monotonic" if kind == "local-m" else "predictive"
    return LocalAttention(MultiplicativeAttention(h, h, "general"), cfg.local_width, mode)


@register("seq2seq", Seq2SeqConfig)
class Seq2Seq(nn.Module):
    """RNN encoder-decoder; see the module docstring for the attention kinds.

    Shapes: src (B, S) padded ids, src_len (B,), tgt (B, T) ids ending in end-of-sequence.
    ``forward`` returns teacher-forced logits (B, T, V).

    Example:
        >>> from attnkit.models import build, decoding
        >>> model = build("seq2seq", dict(src_vocab_size=12, tgt_vocab_size=9, **PRESETS["tiny"]))
        >>> src, src_len = torch.randint(3, 12, (2, 7)), torch.tensor([7, 4])
        >>> out = decoding.greedy(model.eval(), src, src_len, max_len=5)
        >>> out.weights.shape[0], out.weights.shape[2]  # (B, steps, S)
        (2, 7)
    """

    attention: Any  # the attention module, None for attention="none"
    direction: Tensor  # (2, E) with shared_encoder: added to each direction's input

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, e = cfg.hidden_dim, cfg.embed_dim
        self.src_embed = nn.Embedding(cfg.src_vocab_size, e, padding_idx=cfg.pad_id)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, e, padding_idx=cfg.pad_id)
        self.encoder_fwd = nn.GRU(e, h // 2, batch_first=True)
        if cfg.shared_encoder:
            self.direction = nn.Parameter(torch.zeros(2, e))  # added to forward / backward input
        else:
            self.encoder_bwd = nn.GRU(e, h // 2, batch_first=True)
        self.bridge = nn.Linear(h, h)  # encoder final states -> s_0
        self.cell = nn.GRUCell(e + h, h)
        self.attention = _attention_module(cfg)
        self.combine = nn.Linear(2 * h, h)  # W_c
        self.out = nn.Linear(h, cfg.tgt_vocab_size)  # W_s
        self.drop = nn.Dropout(cfg.dropout)

    # -- encoder ------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(memory (B, S, H), key padding mask (B, S), final summary (B, H))."""
        emb = self.drop(self.src_embed(src))  # (B, S, E)
        b, s, _ = emb.shape
        lengths = src_len.to(src.device)
        valid = torch.arange(s, device=src.device)[None, :] < lengths[:, None]  # (B, S)
        if gru_supported(emb) and b and int(lengths.min()) >= 1:
            memory = gru(emb, lengths, *self._encoder_weights(), reverse=(False, True))
        else:
            memory = self._encode_modules(emb, lengths, valid)
        half = memory.shape[-1] // 2
        last = memory.gather(1, (lengths - 1).clamp(min=0)[:, None, None].expand(b, 1, half))
        # forward direction's end, backward direction's start
        summary = torch.cat([last[:, 0], memory[:, 0, half:]], dim=-1)
        return memory, valid, summary

    def _encoder_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Both directions' GRU weights, stacked (see attnkit._ext.gru)."""
        if not self.cfg.shared_encoder:
            return stacked_weights(self.encoder_fwd, self.encoder_bwd)
        g = self.encoder_fwd  # one GRU; each direction's vector, through W_ih, is a bias
        w_ih, w_hh, b_ih, b_hh = stacked_weights(g, g)
        w_in = cast(Tensor, g.weight_ih_l0)  # (3H, E)
        return w_ih, w_hh, b_ih + self.direction @ w_in.t(), b_hh

    def _encode_modules(self, emb: Tensor, lengths: Tensor, valid: Tensor) -> Tensor:
        """The same encoder through nn.GRU (other devices, or no compiled kernel)."""
        b, s, _ = emb.shape
        pos = torch.arange(s, device=emb.device)[None, :]
        # reversed-within-length order: position i <-> length - 1 - i; padding stays in place
        rev = torch.where(valid, lengths[:, None] - 1 - pos, pos)  # (B, S)
        reversed_emb = emb.gather(1, rev[..., None].expand_as(emb))
        if self.cfg.shared_encoder:
            both = torch.cat([emb + self.direction[0], reversed_emb + self.direction[1]])
            out, _ = self.encoder_fwd(both)  # (2B, S, H/2)
            fwd, bwd = out[:b], out[b:]
        else:
            fwd, _ = self.encoder_fwd(emb)  # (B, S, H/2); padding comes after every real step
            bwd, _ = self.encoder_bwd(reversed_emb)
        bwd = bwd.gather(1, rev[..., None].expand_as(bwd))  # back to input order
        return torch.cat([fwd, bwd], dim=-1) * valid[..., None]  # (B, S, H), 0 on padding

    # -- decoding protocol (see models/decoding.py) -------------------------------------------
    def start(self, src: Tensor, src_len: Tensor) -> Seq2SeqState:
        """Encode once: the state before the first output step."""
        memory, mask, summary = self.encode(src, src_len)
        hidden = torch.tanh(self.bridge(summary))  # s_0
        keys = self.attention.project_keys(memory) if self.cfg.attention == "additive" else None
        return Seq2SeqState(memory, mask, summary, hidden, torch.zeros_like(hidden), keys)

    def step(
        self, tokens: Tensor, state: Seq2SeqState, t: int
    ) -> tuple[Tensor, Seq2SeqState, Tensor]:
        """One output step from the previous tokens (B,): (logits (B, V), next state, weights
        (B, S); zeros for attention="none")."""
        emb = self.drop(self.tgt_embed(tokens))  # (B, E)
        kind, s = self.cfg.attention, state
        if kind == "none":
            context, weights = s.summary, torch.zeros_like(s.mask, dtype=emb.dtype)
            hidden = self.cell(torch.cat([emb, context], -1), s.hidden)
        elif kind == "additive":  # Bahdanau: attend with s_{t-1}, then update
            context, weights = self.attention(
                s.hidden, s.memory, key_padding_mask=s.mask, projected_keys=s.keys
            )
            hidden = self.cell(torch.cat([emb, context], -1), s.hidden)
        elif kind == "fc-positions":  # the PyTorch tutorial's: attend with [y_{t-1}; s_{t-1}]
            query = torch.cat([emb, s.hidden], -1)
            context, weights = self.attention(query, s.memory, key_padding_mask=s.mask)
            hidden = self.cell(torch.cat([emb, context], -1), s.hidden)
        else:  # Luong: update with input feeding, then attend with s_t
            hidden = self.cell(torch.cat([emb, s.feed], -1), s.hidden)
            kw = {"positions": t} if kind == "local-m" else {}
            context, weights = self.attention(hidden, s.memory, key_padding_mask=s.mask, **kw)
        feed = torch.tanh(self.combine(torch.cat([context, hidden], -1)))  # h~_t (B, H)
        nxt = Seq2SeqState(s.memory, s.mask, s.summary, hidden, feed, s.keys)
        return self.out(self.drop(feed)), nxt, weights

    def forward(self, src: Tensor, src_len: Tensor, tgt: Tensor) -> Tensor:
        """Teacher forcing: logits (B, T, V) for predicting tgt[:, t] from tgt[:, :t]."""
        state = self.start(src, src_len)
        y_prev = torch.full_like(tgt[:, 0], self.cfg.bos_id)
        logits = []
        for t in range(tgt.shape[1]):
            out, state, _ = self.step(y_prev, state, t)
            logits.append(out)
            y_prev = tgt[:, t]
        return torch.stack(logits, dim=1)

    def loss(self, batch) -> Tensor:
        """Mean cross-entropy over real target positions of a batch with ``src``, ``src_len``
        and ``tgt`` (``attnkit.tasks.PairBatch``); padding is not counted."""
        logits = self(batch.src, batch.src_len, batch.tgt)
        return F.cross_entropy(
            logits.flatten(0, 1), batch.tgt.flatten(), ignore_index=self.cfg.pad_id
        )
