"""Decoding shared by every autoregressive model: greedy and beam search, with the weights.

A model decodes through a small protocol (:class:`Decoder`):

- ``model.cfg`` has ``bos_id``, ``eos_id`` and ``max_output_len``;
- ``model.start(src, src_len) -> state``: encode a batch once; the state is a dataclass (or
  tuple) of tensors whose first dimension is the batch, or None;
- ``model.step(tokens, state, t) -> (logits (B, V), state, weights)``: one output step from the
  previous tokens (B,); ``weights`` is a tensor with the batch first (the attention of this
  step, e.g. (B, S)).

Both searches rank hypotheses by one score, the length-normalised log-probability
``sum(log p(y_t)) / len(y)``, where ``len`` counts the end-of-sequence token (Wu et al. 2016
use a softer length penalty; with exponent 1 it is this one). Beam search stops as soon as no
live hypothesis can beat the best finished one under that score, and chooses by it. Both
decode a batch at once; in beam search each input keeps ``width`` rows of the batch until its
own search is over, and its result is the one it would get alone.

Plain beam search can prune greedy's prefix and end with a less probable sequence than greedy
decoding; here the greedy hypothesis is always one of the candidates, so a wider beam never
returns a sequence that scores below greedy's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from ..layers.multihead import packed_projections

__all__ = [
    "MAX_BEAM",
    "Decoded",
    "Decoder",
    "IncrementalLM",
    "beam_search",
    "extend",
    "generate",
    "greedy",
    "next_token",
    "select_state",
    "sequence_score",
]

MAX_BEAM = 256  # hypotheses are Python objects: far wider beams would take hours per input


class Decoder(Protocol):
    cfg: Any  # bos_id, eos_id, max_output_len

    def start(self, src: Tensor, src_len: Tensor | None) -> Any: ...

    def step(self, tokens: Tensor, state: Any, t: int) -> tuple[Tensor, Any, Tensor]: ...


@dataclass
class Decoded:
    """Decoded sequences, without end-of-sequence.

    ``ids``: one list per input; ``weights``: (B, T, ...) per step (rows past a sequence's end
    belong to no token); ``scores``: (B,) length-normalised log-probabilities.
    """

    ids: list[list[int]]
    weights: Tensor
    scores: Tensor


def next_token(
    logits: Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B,) ids from (B, V) logits: the most likely at temperature 0, else sampled from
    softmax(logits / temperature) restricted to the ``top_k`` most likely."""
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise ValueError("temperature must be >= 0 and top_k >= 1")
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]


def extend(
    step,
    prompt: Tensor,
    new_tokens: int,
    state: Any = None,
    *,
    whole: bool = False,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``prompt`` (B, T) followed by ``new_tokens`` ids chosen by :func:`next_token`.

    ``step(ids, state) -> (logits (B, V) of the token after ids, state)`` is a language
    model's incremental call: it gets the prompt first, then each new token alone, with the
    state (a KV cache, an RNN's hidden state) it returned last. With ``whole=True`` it gets the
    whole sequence every time instead (recomputing the prefix)."""
    seq, feed = prompt, prompt
    for _ in range(new_tokens):
        logits, state = step(feed, state)
        nxt = next_token(logits, temperature, top_k, generator)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        feed = seq if whole else nxt[:, None]
    return seq


def generate(
    model,
    step,
    prompt: Tensor,
    new_tokens: int,
    start=None,
    *,
    whole: bool = False,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A language model's ``generate``: :func:`extend` with ``model``'s ``step``, in eval mode
    and ``torch.inference_mode`` (restored afterwards, also on error), for a prompt (B, T) that
    fits ``model.cfg.max_len`` with the new tokens. ``start()``, called once the arguments are
    checked, gives the first state (default None). Returns an ordinary tensor (B, T + new)."""
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ValueError(f"prompt must be (B, T) with T >= 1, got {tuple(prompt.shape)}")
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise ValueError("temperature must be >= 0 and top_k >= 1")
    if prompt.shape[1] + new_tokens > model.cfg.max_len:
        raise ValueError(
            f"{prompt.shape[1]} + {new_tokens} tokens exceed max_len {model.cfg.max_len}"
        )
    was_training = model.training
    model.eval()
    try:
        # inference_mode is cheaper per op than no_grad; each step is a few small operations
        with torch.inference_mode(), packed_projections(model):
            seq = extend(
                step,
                prompt,
                new_tokens,
                start() if start else None,
                whole=whole,
                temperature=temperature,
                top_k=top_k,
                generator=generator,
            )
    finally:
        model.train(was_training)
    return seq.clone()  # an ordinary tensor, usable where autograd is on


class IncrementalLM:
    """``generate`` for a language model that has the incremental call ``advance(ids, state)
    -> (logits (B, V) of the next token, state)`` and ``empty_state(capacity)``, the state
    before any token with room for ``capacity`` of them (the models of ``decoder_only`` and
    ``rnn_lm``, and an exported model run by onnxruntime)."""

    cfg: Any  # max_len

    def advance(self, ids: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def empty_state(self, capacity: int | None = None) -> Any:
        return None

    def generate(
        self,
        prompt: Tensor,
        new_tokens: int,
        *,
        temperature: float = 0.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``prompt`` (B, T) followed by ``new_tokens`` tokens: greedy at temperature 0, else
        sampled from softmax(logits / temperature), restricted to the ``top_k`` most likely.
        ``use_cache=False`` recomputes the whole sequence at every token instead."""
        return generate(
            self,
            self.advance,
            prompt,
            new_tokens,
            (lambda: self.empty_state(prompt.shape[1] + new_tokens)) if use_cache else None,
            whole=not use_cache,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
        )


def select_state(state: Any, index: Tensor) -> Any:
    """The rows ``index`` (K,) of every batch-first tensor in a decoder state."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, index.to(state.device))
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(
            state,
            **{
                f.name: select_state(getattr(state, f.name), index)
                for f in dataclasses.fields(state)
            },
        )
    if isinstance(state, tuple | list):
        return type(state)(select_state(s, index) for s in state)
    return state


def _trim(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


@torch.no_grad()
def greedy(
    model: Decoder, src: Tensor, src_len: Tensor | None, max_len: int | None = None
) -> Decoded:
    """Batched greedy decoding: the most probable token at every step, until every row has
    ended or ``max_len`` (default ``model.cfg.max_output_len``) steps."""
    cfg = model.cfg
    max_len = cfg.max_output_len if max_len is None else max_len
    b = src.shape[0]
    state = model.start(src, src_len)
    y = torch.full((b,), cfg.bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    logp = torch.zeros(b, dtype=torch.float64, device=src.device)
    length = torch.zeros(b, dtype=torch.long, device=src.device)
    ids, weights = [], []
    for t in range(max_len):
        logits, state, w = model.step(y, state, t)
        step_logp, y = logits.float().log_softmax(-1).max(-1)
        logp += torch.where(done, 0.0, step_logp.double())
        length += (~done).long()
        ids.append(y)
        weights.append(w)
        done |= y == cfg.eos_id
        if done.all():
            break
    rows = torch.stack(ids, 1).tolist()
    seqs = [_trim(r, cfg.eos_id) for r in rows]
    return Decoded(seqs, torch.stack(weights, 1), logp / length.clamp(min=1))


@dataclass
class _Hyp:
    logp: float
    ids: list[int]
    weights: list[Tensor]

    def score(self) -> float:
        return self.logp / max(len(self.ids), 1)


@torch.no_grad()
def beam_search(
    model: Decoder,
    src: Tensor,
    src_len: Tensor | None,
    width: int = 4,
    max_len: int | None = None,
) -> Decoded:
    """Beam search for a batch: for each input the best of ``width`` hypotheses and greedy's,
    by length-normalised log-probability. The inputs decode together (``width`` rows each in
    every model step) but independently: each gets the result it would get alone, and leaves
    the batch once its search is over."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_BEAM:
        raise ValueError(f"beam width must be an int from 1 to {MAX_BEAM}, got {width!r}")
    if src.shape[0] < 1:
        raise ValueError("beam_search needs at least one input")
    cfg, k = model.cfg, width
    max_len = cfg.max_output_len if max_len is None else max_len
    first = greedy(model, src, src_len, max_len)
    finished: list[list[_Hyp]] = []
    for r, ids in enumerate(first.ids):
        # a row shorter than the steps taken wrote end-of-sequence
        g_ids = ids + ([cfg.eos_id] if len(ids) < first.weights.shape[1] else [])
        steps = list(first.weights[r, : len(g_ids)])
        finished.append([_Hyp(float(first.scores[r]) * len(g_ids), g_ids, steps)])

    active = list(range(src.shape[0]))  # the inputs still searching, in the state's order
    live: list[list[_Hyp]] = [[_Hyp(0.0, [], [])] for _ in active]
    state = select_state(model.start(src, src_len), torch.arange(len(active)).repeat_interleave(k))
    for t in range(max_len):
        # slot j of input n is row n * k + j; slots past an input's live hypotheses repeat
        # its last one and take no part (a log-probability of -inf)
        rows = [hyps[min(j, len(hyps) - 1)] for hyps in live for j in range(k)]
        tokens = torch.tensor([h.ids[-1] if h.ids else cfg.bos_id for h in rows], device=src.device)
        logits, state, w = model.step(tokens, state, t)
        logps = [[h.logp for h in hyps] + [-math.inf] * (k - len(hyps)) for hyps in live]
        so_far = torch.tensor(logps, dtype=torch.float64, device=logits.device)  # (N, k)
        logp = logits.float().log_softmax(-1).double()  # greedy's precision, summed in double
        total = so_far[:, :, None] + logp.view(len(live), k, -1)
        vocab = total.shape[-1]
        top = total.flatten(1).topk(min(k, k * vocab), dim=-1)
        still, keep, parents = [], [], []
        for n, (values, flat) in enumerate(
            zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ):
            nxt, from_rows = [], []
            for value, index in zip(values, flat, strict=True):
                if value == -math.inf:
                    break  # sorted: the rest are no hypotheses either
                j, tok = divmod(index, vocab)
                parent = live[n][j]
                hyp = _Hyp(value, parent.ids + [tok], parent.weights + [w[n * k + j]])
                if tok == cfg.eos_id or t == max_len - 1:
                    finished[active[n]].append(hyp)
                else:
                    nxt.append(hyp)
                    from_rows.append(n * k + j)
            if not nxt:
                continue
            best = max(h.score() for h in finished[active[n]])
            # a live hypothesis only loses log-probability; the most it can reach is logp / max_len
            if best >= max(h.logp for h in nxt) / max_len:
                continue
            still.append(active[n])
            keep.append(nxt)
            parents += [from_rows[min(j, len(nxt) - 1)] for j in range(k)]
        if not still:
            break
        active, live = still, keep
        state = select_state(state, torch.tensor(parents, device=src.device))

    chosen = [max(hyps, key=_Hyp.score) for hyps in finished]
    longest = max(len(h.weights) for h in chosen)
    weights = first.weights.new_zeros((len(chosen), longest, *first.weights.shape[2:]))
    for r, h in enumerate(chosen):
        weights[r, : len(h.weights)] = torch.stack(h.weights)
    out_ids = [_trim(h.ids, cfg.eos_id) for h in chosen]
    scores = torch.tensor([h.score() for h in chosen], dtype=torch.float64)
    return Decoded(out_ids, weights, scores)


@torch.no_grad()
def sequence_score(model: Decoder, src: Tensor, src_len: Tensor, ids: list[int]) -> float:
    """The length-normalised log-probability of ``ids`` (then end-of-sequence, unless the
    sequence is ``max_output_len`` long) for one input, by teacher forcing."""
    cfg = model.cfg
    seq = list(ids) + ([cfg.eos_id] if len(ids) < cfg.max_output_len else [])
    state = model.start(src, src_len)
    y = torch.tensor([cfg.bos_id], device=src.device)
    total = 0.0
    for t, tok in enumerate(seq):
        logits, state, _ = model.step(y, state, t)
        total += float(logits.float().log_softmax(-1)[0, tok])
        y = torch.tensor([tok], device=src.device)
    return total / max(len(seq), 1) if seq else -math.inf
