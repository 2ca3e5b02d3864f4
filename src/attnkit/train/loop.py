"""Training loop for the string-to-string models: deterministic, resumable, early-stopping."""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..models import Seq2Seq
from ..tasks import PairDataset, char_accuracy, exact_match
from . import checkpoint


@dataclass
class TrainConfig:
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 128
    lr: float = 5e-3  # Adam, cosine-decayed to lr / 20 over `epochs`
    target: float | None = None  # stop once held-out exact match reaches this (0..1)
    patience: int = 5  # ... or after this many epochs without improvement
    seed: int = 0
    clip: float = 1.0  # gradient norm clipping
    progress: bool = True  # a progress bar per epoch (on a terminal)


def decode_batches(model: Seq2Seq, ds: PairDataset, batch_size: int = 512):
    """Greedy predictions for every example of ``ds``, in order, as id lists."""
    model.eval()
    order = torch.argsort(ds.src_len, stable=True)  # similar lengths together: less padding
    out: list[list[int]] = [[] for _ in range(len(ds))]
    for idx in order.split(batch_size):
        src, src_len, _ = ds.batch(idx)
        seqs, _ = model.greedy(src, src_len)
        for i, s in zip(idx.tolist(), seqs, strict=True):
            out[i] = s
    return out


def evaluate(model: Seq2Seq, ds: PairDataset) -> dict[str, float]:
    """Held-out exact match, character accuracy and size."""
    preds = [ds.tgt_vocab.decode(s) for s in decode_batches(model, ds)]
    targets = [t for _, t in ds.pairs]
    return {
        "exact_match": exact_match(preds, targets),
        "char_accuracy": char_accuracy(preds, targets),
        "n": len(targets),
    }


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}


def _cosine(total_steps: int) -> Callable[[int], float]:
    return lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1)))


def fit(
    model: Seq2Seq,
    train: PairDataset,
    held_out: PairDataset,
    cfg: TrainConfig,
    out: str | Path,
    meta: dict,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train with teacher forcing; keep the best model (by held-out exact match) in ``out``.

    After every epoch ``out/trainer.pt`` holds everything needed to continue, so an interrupted
    run resumed with ``resume=True`` loses at most the epoch in progress, and, because batch
    order and dropout are seeded per epoch, ends exactly where an uninterrupted run would.
    Returns the trainer state (history of metrics and wall times, best score, epoch).
    """
    opt = _adam(list(model.parameters()), cfg.lr)
    steps = cfg.epochs * math.ceil(len(train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(steps))
    state = {"epoch": 0, "best": -1.0, "bad_epochs": 0, "history": [], "elapsed": 0.0}
    saved = checkpoint.load_trainer(out) if resume else None
    if saved is not None:
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as err:
            raise checkpoint.CheckpointError(
                f"the run in {out} was trained with another model size or attention: {err}"
            ) from None
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        state = {k: saved[k] for k in state}
        log(f"resuming after epoch {state['epoch']} (best exact match {state['best']:.4f})")
    started = time.perf_counter() - state["elapsed"]

    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        if _finished(state, cfg):
            break
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: same per epoch on resume
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(
            cfg.seed * 7919 + epoch))  # fmt: skip
        batches = order.split(cfg.batch_size)
        model.train()
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, file=sys.stderr,
                   disable=not cfg.progress or None)  # fmt: skip
        for idx in bar:
            loss = model.loss(*train.batch(idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        metrics = evaluate(model, held_out)
        state["elapsed"] = time.perf_counter() - started
        state["epoch"] = epoch
        state["history"].append({"epoch": epoch, "seconds": state["elapsed"], **metrics})
        improved = metrics["exact_match"] > state["best"]
        if improved:
            state["best"], state["bad_epochs"] = metrics["exact_match"], 0
            checkpoint.save_model(out, model, train.src_vocab, train.tgt_vocab,
                                  {**meta, "metrics": metrics, "epoch": epoch,
                                   "train_config": asdict(cfg)})  # fmt: skip
        else:
            state["bad_epochs"] += 1
        checkpoint.save_trainer(
            out,
            {**state, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": _rng_state()},
        )  # fmt: skip
        log(
            f"epoch {epoch:>3}  loss {loss.item():.4f}  held-out exact {metrics['exact_match']:.4f}"
            f"  chars {metrics['char_accuracy']:.4f}  {state['elapsed']:.1f}s"
            + ("  *" if improved else "")
        )
    return state


def _adam(params: list, lr: float) -> torch.optim.Adam:
    """Adam with the fused (one kernel per step) update where this torch and device have it."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _finished(state: dict, cfg: TrainConfig) -> bool:
    if cfg.target is not None and state["best"] >= cfg.target:
        return True
    return state["bad_epochs"] >= cfg.patience


def predict(
    model: Seq2Seq, src_vocab, tgt_vocab, texts: Sequence[str], beam: int = 1
) -> list[tuple[str, torch.Tensor]]:
    """(output text, weights (T_out, S_in)) for each input text; texts must be encodable."""
    model.eval()
    results = []
    for text in texts:
        ids = torch.tensor([src_vocab.encode(text)])
        lengths = torch.tensor([len(text)])
        if beam > 1:
            seq, weights = model.beam(ids, lengths, width=beam)
        else:
            seqs, w = model.greedy(ids, lengths)
            seq, weights = seqs[0], w[0]
        out = tgt_vocab.decode(seq)
        results.append((out, weights[: len(out) + 1, : len(text)]))
    return results
