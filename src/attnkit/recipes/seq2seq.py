"""The seq2seq recipe: a string-to-string task, the RNN encoder-decoder, the trainer.

Defaults come from the dataclasses alone (``Seq2SeqConfig``, ``TrainConfig``); ``PRESETS``
holds the few settings tuned for a task, by field name. Explicit settings always win.

    >>> from attnkit.recipes import seq2seq
    >>> seq2seq.resolve("times", {"attention": "dot"})[1].epochs  # the times preset
    8
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import tasks
from ..models import Seq2SeqConfig, build, entry
from ..tasks import PairDataset, PairTask, read_pairs, split
from ..train import CheckpointError, TrainConfig, fit, load_model, read_config
from ..train.checkpoint import CONFIG, MODEL, TRAINER

__all__ = ["HELD_OUT", "MAX_N", "MODELS", "PRESETS", "Run", "Seq2SeqConfig", "SettingsError",
           "data_defaults", "held_out_pairs", "load", "model_fields", "prepare_out", "resolve",
           "train"]  # fmt: skip

HELD_OUT = 0.2  # the share of distinct inputs held out for selection and evaluation
MAX_N = 1_000_000  # the most pairs a task generates (a bigger n in a config.json is refused)
# per-task settings that differ from the dataclasses' defaults (fields of either)
PRESETS: dict[str, dict[str, Any]] = {
    "times": {"epochs": 8, "hidden_dim": 128},  # fastest to 99.5% (benchmarks/times_speed.py)
}
MODELS = ("seq2seq", "transformer")  # the registered models this recipe trains
# per model: settings for every task ("") and per task, by field name
MODEL_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "seq2seq": PRESETS,
    # Adam at the RNN's 1e-2 is too hot for attention stacks; they also want more, smaller
    # steps, a warmup and no dropout (the held-out gap is one of data, not of overfitting
    # noise). Held-out times after 8 epochs: lr 3e-3, dropout 0.1: 0.935; lr 1e-3, dropout
    # 0.1: 0.960; lr 1e-3, no dropout, twice the pairs: 0.9949 (benchmarks/transformer_vs_rnn.py)
    "transformer": {
        "": {"lr": 1e-3, "warmup": 0.05, "batch_size": 32, "epochs": 10, "dropout": 0.0}
    },
}
# per model: how many times a task's default number of pairs it generates. Without the RNN's
# order built in, the Transformer learns the grammars' forms from more examples (see above).
DATA_SCALE: dict[str, float] = {"seq2seq": 1.0, "transformer": 2.5}
TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))
# what a resumed run must keep besides its model's config: what decides batches and schedule
SCHEDULE_FIELDS = frozenset({"epochs", "batch_size", "lr", "seed", "clip"})
# set from the data, never by the user
DATA_FIELDS = frozenset({"src_vocab_size", "tgt_vocab_size", "max_output_len", "pad_id",
                         "bos_id", "eos_id", "max_source_len", "max_len"})  # fmt: skip


def model_fields(model: str = "seq2seq") -> frozenset[str]:
    """The config fields of a model this recipe trains."""
    if model not in MODELS:
        raise SettingsError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return frozenset(f.name for f in fields(entry(model).config_cls))


class SettingsError(ValueError):
    """Settings that cannot be used (unknown, or contradicting the run being resumed)."""


@dataclass
class Run:
    """A trained or loaded experiment."""

    model: nn.Module
    task: PairTask
    config: dict[str, Any]  # config.json, plus "history" after training
    held_out: PairDataset | None = None


def resolve(
    task: str | None, settings: dict[str, Any], model: str = "seq2seq"
) -> tuple[dict[str, Any], TrainConfig]:
    """(model config overrides, TrainConfig) from the model's presets (for every task, then
    for ``task``) and explicit settings (fields of the model's config or TrainConfig; None
    means "not given")."""
    presets = MODEL_PRESETS[model]
    defaults = {**presets.get("", {}), **presets.get(task or "", {})}
    return merge_settings(settings, model, model_fields(model), DATA_FIELDS, defaults)


def merge_settings(settings: dict[str, Any], model: str, own: frozenset[str],
                   from_data: frozenset[str], presets: dict[str, Any],
                   ) -> tuple[dict[str, Any], TrainConfig]:  # fmt: skip
    """(model config overrides, TrainConfig): ``presets`` under the explicit ``settings``
    (None = not given); SettingsError for a setting that is neither a field of the model's
    config (``own``) nor of TrainConfig, or that the data decides (``from_data``)."""
    explicit = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(explicit) - own - TRAIN_FIELDS)
    if unknown:
        raise SettingsError(f"unknown settings for {model}: {', '.join(unknown)}")
    given = sorted(set(explicit) & from_data)
    if given:
        raise SettingsError(f"{', '.join(given)} come from the data, not from settings")
    merged = {**presets, **explicit}
    model_kw = {k: v for k, v in merged.items() if k in own}
    return model_kw, TrainConfig(**{k: v for k, v in merged.items() if k in TRAIN_FIELDS})


def saved_settings(saved: dict, settings: dict[str, Any], from_data: frozenset[str]
                   ) -> dict[str, Any]:  # fmt: skip
    """The settings a resumed run continues with: its own model config and TrainConfig, under
    the ones the user gave (not None), less those the data decides (``from_data``)."""
    given = {k: v for k, v in settings.items() if v is not None}
    merged = {**saved.get("train_config", {}), **saved["config"], **given}
    return {k: v for k, v in merged.items() if k not in from_data}


def data_defaults(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Model size and schedule for a user's file of pairs, from the data rather than one fixed
    default: a wider model for more pairs or longer inputs, and about 120,000 examples seen in
    all (the budget at which the times task reaches 99.5%, benchmarks/times_speed.py), so a
    small file gets more epochs and a big one fewer; smaller batches for small files. Training
    stops once held-out exact match is perfect: there is nothing left to select.

        >>> data_defaults([(f"{i} min after 5", "x") for i in range(10_000)])
        {'hidden_dim': 128, 'epochs': 15, 'batch_size': 128, 'patience': 4, 'target': 1.0}
    """
    distinct = len(dict(pairs))
    n_train = max(1, round(distinct * (1 - HELD_OUT)))
    longest = max(len(s) for s, _ in pairs)
    hidden = 64 if distinct < 1000 else 96 if distinct < 4000 else 128
    if longest > 60:
        hidden = max(hidden, 128)
    epochs = min(40, max(6, -(-120_000 // n_train)))
    batch = 32 if n_train < 1000 else 64 if n_train < 4000 else 128
    return {"hidden_dim": hidden, "epochs": epochs, "batch_size": batch,
            "patience": max(4, epochs // 4), "target": 1.0}  # fmt: skip


def _resume_settings(saved: dict, settings: dict[str, Any], out) -> dict[str, Any]:
    """The settings of the run in ``out``, where the user gave none; SettingsError where the
    user's contradict it."""
    previous = {**saved.get("train_config", {}), **saved["config"]}
    fixed = model_fields(saved.get("model", "seq2seq")) | SCHEDULE_FIELDS
    conflicts = [
        f"{k}={previous[k]!r}"
        for k in sorted(fixed - DATA_FIELDS)
        if k in previous and settings.get(k) is not None and settings[k] != previous[k]
    ]
    if conflicts:
        raise SettingsError(
            f"{out} holds a run with {', '.join(conflicts)}; resume it with those, or leave "
            "them out"
        )
    kept = {k: previous[k] for k in fixed - DATA_FIELDS if k in previous}
    return {**settings, **kept}


def _check_source(task: str | None, data: object, resume: bool = False) -> None:
    """SettingsError unless exactly one of a task and a data file is named (a resumed run may
    name neither: it takes its own)."""
    if (task is not None and data is not None) or (task is None and data is None and not resume):
        raise SettingsError(
            f"give a task ({' or '.join(tasks.names())}) or a TSV file of pairs, "
            "not both or neither"
        )


def _data(task: str | None, data: str | None, n: int | None, seed: int,
          model: str = "seq2seq"):  # fmt: skip
    """(pairs, description of their origin) of a registered task or a TSV file."""
    _check_source(task, data)
    if data is not None:
        return read_pairs(data), {"file": str(data), "seed": seed, "held_out": HELD_OUT}
    task_cls = tasks.get(task)
    n = round(task_cls.default_n * DATA_SCALE.get(model, 1.0)) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 10 <= n <= MAX_N:
        raise SettingsError(f"n must be an int from 10 to {MAX_N}, got {n!r}")
    pairs = task_cls.generate(n, seed)
    return pairs, {"task": task, "n": n, "seed": seed, "held_out": HELD_OUT}


def _check_same_data(saved: dict, task, data, n, out) -> tuple[Any, Any, Any]:
    """The run's data where the user named none; SettingsError where the user's differs."""
    src = saved.get("data") or {}
    if task is None and data is None:
        task, data = src.get("task"), src.get("file")
    n = src.get("n") if n is None else n  # the run's, whether or not the task was named again
    ours = {"task": task, "file": str(data) if data else None, "n": n}
    for key, value in ours.items():
        if value is not None and src.get(key) != value:
            raise SettingsError(f"{out} holds a run on {key} {src.get(key)!r}, not {value!r}")
    return task, data, n


def prepare_out(out: str | Path, resume: bool, overwrite: bool, log=print) -> bool:
    """Check the checkpoint directory before any work; True if there is a run to resume.

    A directory that holds a checkpoint is only continued (``resume``) or replaced
    (``overwrite``, which deletes the old files first), never overwritten by accident; a run
    without its trainer.pt cannot be resumed (its best model would be overwritten by a fresh
    start)."""
    out = Path(out)
    if resume and overwrite:
        raise SettingsError("choose --resume or --overwrite, not both")
    if not str(out).strip():
        raise SettingsError("the checkpoint directory name is empty")
    if out.exists() and not out.is_dir():
        raise SettingsError(f"{out} is a file, not a checkpoint directory")
    present = [n for n in (MODEL, CONFIG, TRAINER) if (out / n).exists()]
    if present and not (resume or overwrite):
        raise SettingsError(
            f"{out} already holds a checkpoint; continue it with --resume or replace it with "
            "--overwrite"
        )
    if resume and present and TRAINER not in present:
        raise SettingsError(
            f"{out} cannot be resumed: {TRAINER} (the optimizer state) is missing; start afresh "
            "with --overwrite"
        )
    from ..train import distributed

    ctx = distributed.context()
    distributed.barrier()  # every process has looked before rank 0 changes anything
    if ctx.rank == 0:  # the one process that writes checkpoints
        if overwrite:
            for name in present:
                (out / name).unlink()
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".attnkit-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise SettingsError(f"cannot write to {out}: {err.strerror or err}") from None
    distributed.barrier()
    if resume and not present:
        log(f"nothing to resume in {out}: starting afresh")
    return resume and bool(present)


def train(
    task: str | None = None,
    data: str | Path | None = None,
    *,
    out: str | Path,
    n: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    threads: int | None = None,
    progress: bool = True,
    log=print,
    normalize: list[str] | None = None,
    unknown_token: bool = False,
    model: str | None = None,
    **settings: Any,
) -> Run:
    """Train a seq2seq model on a registered task (``n`` generated pairs) or a TSV file of
    pairs; keep the best in the checkpoint directory ``out``. ``settings`` are fields of
    Seq2SeqConfig or TrainConfig (``attention="dot"``, ``hidden_dim=128``, ``epochs=5``...).
    ``normalize`` names the input normalisation steps (default: the task's, or for a file the
    steps its inputs already satisfy); ``unknown_token`` gives the model an id for characters it
    never saw. ``model`` is "seq2seq" (the RNN encoder-decoder, default) or "transformer". A
    resumed run keeps its own.
    With ``resume`` the run in ``out`` continues with its own settings; a directory that
    already holds a checkpoint is replaced only with ``overwrite``."""
    _check_source(task, data, resume)  # before --out is touched
    if threads:
        torch.set_num_threads(threads)
    resume = prepare_out(out, resume, overwrite, log)
    saved = read_config(out) if resume else None
    if saved is not None:
        task, data, n = _check_same_data(saved, task, data, n, out)
        settings = _resume_settings(saved, settings, out)
        if model is not None and model != saved.get("model", "seq2seq"):
            raise SettingsError(f"{out} holds a {saved.get('model')} run, not {model}")
        model = saved.get("model", "seq2seq")
    model = model or "seq2seq"
    model_kw, tcfg = resolve(task, {**settings, "progress": progress}, model)
    torch.manual_seed(tcfg.seed)
    pairs, source = _data(task, None if data is None else str(data), n, tcfg.seed, model)
    if task is None and saved is None:  # a user's file: size and schedule from the data
        own = model_fields(model) | TRAIN_FIELDS
        auto = {k: v for k, v in data_defaults(pairs).items()
                if settings.get(k) is None and k in own}  # fmt: skip
        if auto:
            log("from the data: " + ", ".join(f"{k}={v}" for k, v in auto.items()))
        model_kw, tcfg = resolve(task, {**settings, **auto, "progress": progress}, model)
    train_pairs, held = split(pairs, HELD_OUT, tcfg.seed)
    if saved is not None:
        the_task = tasks.from_config(saved["task"])
    else:
        the_task = (tasks.get(task) if task else PairTask).from_pairs(pairs, normalize,
                                                                      unknown_token)  # fmt: skip
    tv = the_task.tgt_vocab
    longest_out = 2 * max(len(t) for _, t in pairs) + 2
    data_kw = dict(max_output_len=longest_out, pad_id=tv.pad_id, bos_id=tv.bos_id,
                   eos_id=tv.eos_id)  # fmt: skip
    if model == "seq2seq":
        data_kw["max_source_len"] = the_task.max_input_len
    else:  # positions for the longest input and output
        data_kw["max_len"] = max(the_task.max_input_len, longest_out) + 1
    cfg = entry(model).config_cls(len(the_task.src_vocab), len(tv), **data_kw, **model_kw)
    net = build(model, cfg)
    held_ds = the_task.dataset(held)
    kind = f"attention {cfg.attention}" if model == "seq2seq" else "transformer"
    log(f"{len(train_pairs)} training pairs, {len(held)} held out; {kind}")
    meta = {"task": the_task.to_config(), "data": source}
    train_ds = the_task.dataset(train_pairs, train=True)
    state = fit(net, the_task, train_ds, held_ds, tcfg, out, meta, resume=resume, log=log)
    best = load(out)
    best.config["history"] = state["history"]
    best.held_out = held_ds
    return best


def load(checkpoint: str | Path) -> Run:
    """The model and task saved in ``checkpoint``; CheckpointError if they do not fit."""
    model, config = load_model(checkpoint)
    try:
        task = tasks.from_config(config.get("task"))
    except ValueError as err:
        raise CheckpointError(f"{checkpoint}/config.json: {err}") from None
    cfg = model.cfg
    sizes = (len(task.src_vocab), len(task.tgt_vocab))
    if sizes != (cfg.src_vocab_size, cfg.tgt_vocab_size):
        raise CheckpointError(
            f"{checkpoint}/config.json: vocabularies of {sizes} entries do not match the "
            f"model's {(cfg.src_vocab_size, cfg.tgt_vocab_size)}"
        )
    return Run(model, task, config)


END = "⏎"  # the label of the end-of-sequence row in pictures
START = "▸"  # ... and of the start token a decoder reads first


def output_labels(tokens, weights: torch.Tensor) -> list[str]:
    """Row labels of an output's weights: its tokens (characters or subwords), and the end
    of sequence where decoding wrote one (a last weight row beyond the tokens)."""
    return list(tokens) + [END] * (weights.shape[0] - len(tokens))


def transformer_weights(run: Run, text: str, out: str, layers=None):
    """TransformerWeights of a Transformer run teacher-forced on its own output ``out`` for
    ``text``: every layer's (1, H, rows, cols) encoder, decoder and cross-attention weights
    (only ``layers``, where given)."""
    batch = run.task.dataset([(text, out)]).batch(torch.tensor([0]))
    with torch.no_grad():
        _, weights = run.model.eval()(batch.src, batch.src_len, batch.tgt, return_weights=True,
                                      layers=layers)  # fmt: skip
    return weights


def held_out_pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The held-out pairs of the run a checkpoint's config describes (regenerated)."""
    src = config.get("data") or {}
    if not isinstance(src, dict) or not src.get("task"):
        raise SettingsError("this checkpoint was trained on a file: pass --data FILE.tsv")
    n, seed, held = src.get("n"), src.get("seed"), src.get("held_out")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (n, seed))
    if not ints or not 10 <= n <= MAX_N or not isinstance(held, float) or not 0 < held < 1:
        raise CheckpointError(
            f"config.json: the data description {src} is unusable (n an int from 10 to {MAX_N}, "
            "seed an int, held_out in (0, 1))"
        )
    try:
        task_cls = tasks.get(src["task"])
    except ValueError as err:
        raise CheckpointError(f"config.json: {err}") from None
    return split(task_cls.generate(n, seed), held, seed)[1]
