"""Character-level RNN encoder-decoder with attention.

Encoder: a bidirectional GRU over the input characters, h_i = [h->_i; h<-_i] (Bahdanau et al.
2014, section 3.2). Each direction reads a row only up to its own length, so padding is never
read. On a CPU both directions run in one call of the compiled recurrence of ``models/gru.py``
(several times faster than ``nn.GRU`` at these sizes); elsewhere, or without a C++ compiler, the
same ``nn.GRU`` modules run, the backward one over each row reversed within its length. With
``shared_encoder`` both directions use one GRU, told apart by a learned direction vector added
to the input.
Decoder: a GRU cell, one output character per step, with one of the attention kinds:

- "none": the Sutskever et al. 2014 / Cho et al. 2014 baseline: the context is one fixed
  summary of the input (the encoder's final states), the same at every step;
- "additive": Bahdanau et al. 2014: c_t = attend(s_{t-1}, h) before the state update,
  s_t = GRU([y_{t-1}; c_t], s_{t-1});
- "dot", "general", "scaled_dot", "local-m", "local-p": Luong et al. 2015 with input feeding:
  s_t = GRU([y_{t-1}; h~_{t-1}], s_{t-1}), c_t = attend(s_t, h).

Every kind then outputs h~_t = tanh(W_c [c_t; s_t]) and p(y_t) = softmax(W_s h~_t).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import AdditiveAttention, LocalAttention, MultiplicativeAttention
from ..tasks.vocab import EOS, PAD, SOS
from .gru import gru, gru_supported, stacked_weights

ATTENTIONS = ("none", "additive", "dot", "general", "scaled_dot", "local-m", "local-p")


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int  # input characters incl. the 3 specials
    tgt_vocab_size: int  # output characters incl. the 3 specials
    attention: str = "additive"  # one of ATTENTIONS
    embed_dim: int = 32  # character embedding size (input and output)
    hidden_dim: int = 128  # decoder state; the encoder runs hidden_dim // 2 per direction
    attn_dim: int = 64  # hidden size of the additive score
    local_width: int = 4  # D of local attention: the window is [p_t - D, p_t + D]
    dropout: float = 0.1  # on embeddings and h~_t, training only
    max_output_len: int = 40  # decoding stops here if no end-of-sequence came
    shared_encoder: bool = False  # one GRU for both directions (see the module docstring)

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even, got {self.hidden_dim}")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "tiny": dict(embed_dim=16, hidden_dim=32, attn_dim=16),  # for tests
    "small": dict(embed_dim=32, hidden_dim=128, attn_dim=64),  # the default
}


def _attention_module(cfg: Seq2SeqConfig) -> nn.Module | None:
    h = cfg.hidden_dim
    kind = cfg.attention
    if kind == "none":
        return None
    if kind == "additive":
        return AdditiveAttention(h, h, cfg.attn_dim)
    if kind in ("dot", "general", "scaled_dot"):
        return MultiplicativeAttention(h, h, score=kind)
    mode = "monotonic" if kind == "local-m" else "predictive"
    return LocalAttention(MultiplicativeAttention(h, h, "general"), cfg.local_width, mode)


class Seq2Seq(nn.Module):
    """RNN encoder-decoder; see the module docstring for the attention kinds.

    Shapes: src (B, S) ids padded with 0, src_len (B,), tgt (B, T) ids ending in
    end-of-sequence. ``forward`` returns teacher-forced logits (B, T, V).
    """

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, e = cfg.hidden_dim, cfg.embed_dim
        self.src_embed = nn.Embedding(cfg.src_vocab_size, e, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, e, padding_idx=PAD)
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
        """Both directions' GRU weights, stacked (see models/gru.py)."""
        if not self.cfg.shared_encoder:
            return stacked_weights(self.encoder_fwd, self.encoder_bwd)
        g = self.encoder_fwd  # one GRU; each direction's vector, through W_ih, is a bias
        w_ih, w_hh, b_ih, b_hh = stacked_weights(g, g)
        return w_ih, w_hh, b_ih + self.direction @ g.weight_ih_l0.t(), b_hh

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

    # -- one decoder step -----------------------------------------------------------------------
    def step(self, y_prev, state, feed, memory, mask, summary, t, keys=None):
        """One output step: returns (logits (B, V), state, h~_t, weights (B, S) or None).

        ``keys``: the additive score's projected memory, computed once per input.
        """
        emb = self.drop(self.tgt_embed(y_prev))  # (B, E)
        kind, weights = self.cfg.attention, None
        if kind == "none":
            context = summary
            state = self.cell(torch.cat([emb, context], -1), state)
        elif kind == "additive":  # Bahdanau: attend with s_{t-1}, then update
            context, weights = self.attention(state, memory, mask=mask, projected_keys=keys)
            state = self.cell(torch.cat([emb, context], -1), state)
        else:  # Luong: update with input feeding, then attend with s_t
            state = self.cell(torch.cat([emb, feed], -1), state)
            kw = {"positions": t} if kind == "local-m" else {}
            context, weights = self.attention(state, memory, mask=mask, **kw)
        feed = torch.tanh(self.combine(torch.cat([context, state], -1)))  # h~_t (B, H)
        return self.out(self.drop(feed)), state, feed, weights

    def _start(self, src, src_len):
        memory, mask, summary = self.encode(src, src_len)
        state = torch.tanh(self.bridge(summary))
        feed = torch.zeros_like(state)
        keys = self.attention.project_keys(memory) if self.cfg.attention == "additive" else None
        return memory, mask, summary, state, feed, keys

    def forward(self, src: Tensor, src_len: Tensor, tgt: Tensor) -> Tensor:
        """Teacher forcing: logits (B, T, V) for predicting tgt[:, t] from tgt[:, :t]."""
        memory, mask, summary, state, feed, keys = self._start(src, src_len)
        y_prev = torch.full_like(tgt[:, 0], SOS)
        logits = []
        for t in range(tgt.shape[1]):
            out, state, feed, _ = self.step(y_prev, state, feed, memory, mask, summary, t, keys)
            logits.append(out)
            y_prev = tgt[:, t]
        return torch.stack(logits, dim=1)

    def loss(self, src: Tensor, src_len: Tensor, tgt: Tensor) -> Tensor:
        """Mean cross-entropy over real target positions (padding is not counted)."""
        logits = self(src, src_len, tgt)
        return F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD)

    # -- decoding -------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, src: Tensor, src_len: Tensor) -> tuple[list[list[int]], Tensor]:
        """Batched greedy decoding: (ids per example without EOS, weights (B, T, S))."""
        memory, mask, summary, state, feed, keys = self._start(src, src_len)
        b, s = src.shape
        y = torch.full((b,), SOS, dtype=torch.long, device=src.device)
        done = torch.zeros(b, dtype=torch.bool, device=src.device)
        ids, weights = [], []
        for t in range(self.cfg.max_output_len):
            out, state, feed, w = self.step(y, state, feed, memory, mask, summary, t, keys)
            y = out.argmax(-1)
            ids.append(y)
            weights.append(w if w is not None else torch.zeros(b, s, device=src.device))
            done |= y == EOS
            if done.all():
                break
        ids_t = torch.stack(ids, 1).tolist()
        seqs = [row[: row.index(EOS)] if EOS in row else row for row in ids_t]
        return seqs, torch.stack(weights, 1)

    @torch.no_grad()
    def beam(self, src: Tensor, src_len: Tensor, width: int = 4) -> tuple[list[int], Tensor]:
        """Beam search for one input (src (1, S)): (best ids without EOS, weights (T, S))."""
        memory, mask, summary, state, feed, keys = self._start(src, src_len)
        beams = [(0.0, [], state, feed, [])]  # (log p, ids, state, h~, weights per step)
        finished = []
        for t in range(self.cfg.max_output_len):
            k = len(beams)
            y = torch.tensor([b[1][-1] if b[1] else SOS for b in beams], device=src.device)
            st = torch.cat([b[2] for b in beams])
            fd = torch.cat([b[3] for b in beams])
            out, st, fd, w = self.step(
                y, st, fd, memory.expand(k, -1, -1), mask.expand(k, -1), summary.expand(k, -1), t,
                None if keys is None else keys.expand(k, -1, -1),
            )  # fmt: skip
            logp = out.log_softmax(-1)  # (k, V)
            top = logp.topk(width, dim=-1)
            cands = []
            for i in range(k):
                for lp, tok in zip(top.values[i].tolist(), top.indices[i].tolist(), strict=True):
                    row = w[i] if w is not None else torch.zeros(src.shape[1], device=src.device)
                    cands.append((beams[i][0] + lp, beams[i][1] + [tok], st[i : i + 1],
                                  fd[i : i + 1], beams[i][4] + [row]))  # fmt: skip
            cands.sort(key=lambda c: c[0], reverse=True)
            beams = []
            for c in cands[:width]:
                (finished if c[1][-1] == EOS else beams).append(c)
            if not beams or (finished and max(f[0] for f in finished) > beams[0][0]):
                break
        best = max(finished or beams, key=lambda c: c[0] / max(len(c[1]), 1))
        ids = best[1][:-1] if best[1] and best[1][-1] == EOS else best[1]
        return ids, torch.stack(best[4])
