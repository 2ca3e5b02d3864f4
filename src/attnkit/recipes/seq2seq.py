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

from .. import tasks
from ..models import ATTENTIONS, Seq2SeqConfig, build, entry
from ..models.seq2seq import DATA_FIELDS
from ..models.transformer import POSITIONS
from ..tasks import PairDataset, PairTask, read_pairs, split
from ..train import CheckpointError, TrainConfig, fit, load_model
from ..train.loop import SettingsError, prepare_out
from . import base
from .base import TRAIN_FIELDS, merge_settings

__all__ = [
    "HELD_OUT",
    "MAX_N",
    "MODELS",
    "PRESETS",
    "Run",
    "Seq2SeqConfig",
    "SettingsError",
    "data_defaults",
    "held_out_pairs",
    "load",
    "model_fields",
    "prepare_out",
    "resolve",
    "train",
]

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
# what a resumed run must keep besides its model's config: what decides batches and schedule
SCHEDULE_FIELDS = frozenset({"epochs", "batch_size", "lr", "seed", "clip"})


def model_fields(model: str = "seq2seq") -> frozenset[str]:
    """The config fields of a model this recipe trains."""
    if model not in MODELS:
        raise SettingsError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return frozenset(f.name for f in fields(entry(model).config_cls))


@dataclass
class Run(base.Run):
    """A trained or loaded experiment (config: config.json, plus "history" after training)."""

    task: PairTask
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
    return {
        "hidden_dim": hidden,
        "epochs": epochs,
        "batch_size": batch,
        "patience": max(4, epochs // 4),
        "target": 1.0,
    }


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


def _data(task: str | None, data: str | None, n: int | None, seed: int, model: str = "seq2seq"):
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


def train(
    task: str | None = None,
    data: str | Path | None = None,
    *,
    out: str | Path,
    n: int | None = None,
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
    ``settings`` also take the job's options (:class:`~attnkit.recipes.base.Job`).
    With ``resume`` the run in ``out`` continues with its own settings; a directory that
    already holds a checkpoint is replaced only with ``overwrite``."""
    job, settings = base.Job.take(out, settings)
    _check_source(task, data, job.resume)  # before --out is touched
    resume, saved = base.begin(job)
    if saved is not None:
        task, data, n = _check_same_data(saved, task, data, n, out)
        settings = _resume_settings(saved, settings, out)
        if model is not None and model != saved.get("model", "seq2seq"):
            raise SettingsError(f"{out} holds a {saved.get('model')} run, not {model}")
        model = saved.get("model", "seq2seq")
    model = model or "seq2seq"
    model_kw, tcfg = resolve(task, {**settings, "progress": job.progress}, model)
    torch.manual_seed(tcfg.seed)
    pairs, source = _data(task, None if data is None else str(data), n, tcfg.seed, model)
    if task is None and saved is None:  # a user's file: size and schedule from the data
        own = model_fields(model) | TRAIN_FIELDS
        auto = {
            k: v for k, v in data_defaults(pairs).items() if settings.get(k) is None and k in own
        }
        if auto:
            job.log("from the data: " + ", ".join(f"{k}={v}" for k, v in auto.items()))
        model_kw, tcfg = resolve(task, {**settings, **auto, "progress": job.progress}, model)
    train_pairs, held = split(pairs, HELD_OUT, tcfg.seed)
    if saved is not None:
        the_task = tasks.from_config(saved["task"])
    else:
        the_task = (tasks.get(task) if task else PairTask).from_pairs(
            pairs, normalize, unknown_token
        )
    tv = the_task.tgt_vocab
    longest_out = 2 * max(len(t) for _, t in pairs) + 2
    data_kw = dict(max_output_len=longest_out, pad_id=tv.pad_id, bos_id=tv.bos_id, eos_id=tv.eos_id)
    if model == "seq2seq":
        data_kw["max_source_len"] = the_task.max_input_len
    else:  # positions for the longest input and output
        data_kw["max_len"] = max(the_task.max_input_len, longest_out) + 1
    cfg = entry(model).config_cls(len(the_task.src_vocab), len(tv), **data_kw, **model_kw)
    net = build(model, cfg)
    held_ds = the_task.dataset(held)
    kind = f"attention {cfg.attention}" if model == "seq2seq" else "transformer"
    job.log(f"{len(train_pairs)} training pairs, {len(held)} held out; {kind}")
    meta = {"task": the_task.to_config(), "data": base.with_digest(source)}
    train_ds = the_task.dataset(train_pairs, train=True)
    state = fit(net, the_task, train_ds, held_ds, tcfg, out, meta, resume=resume, log=job.log)
    best = base.finish(load, out, state)
    best.held_out = held_ds
    return best


def load(checkpoint: str | Path) -> Run:
    """The model and task saved in ``checkpoint``; CheckpointError if they do not fit."""
    model, config = load_model(checkpoint)
    task = base.task_of(f"{checkpoint}/config.json", config, tasks.from_config)
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
        _, weights = run.model.eval()(
            batch.src, batch.src_len, batch.tgt, return_weights=True, layers=layers
        )
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


# -- the recipe protocol (recipes.base): `attnkit train dates|times|pairs` and every verb --


def _steps(text: str) -> list[str]:
    """--normalize: "none" or comma-separated steps of attnkit.tasks.normalize.STEPS."""
    import argparse

    from ..tasks.normalize import STEPS

    names = [] if text.strip().lower() == "none" else [s.strip() for s in text.split(",")]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown step(s) {', '.join(map(repr, unknown))}; use 'none' or some of "
            f"{','.join(STEPS)}"
        )
    return names


@dataclass
class Seq2SeqSettings(base.TrainSettings):
    """``attnkit train dates|times``: a generated task's pairs."""

    model: str | None = base.setting(
        "the RNN encoder-decoder with attention, or a Transformer", choices=MODELS
    )
    attention: str | None = base.setting("the RNN's attention", choices=ATTENTIONS)
    hidden_dim: int | None = base.setting(
        "decoder state size; the encoder has half per direction",
        kind=base.positive_int,
    )
    d_model: int | None = base.setting("Transformer width", kind=base.positive_int)
    num_heads: int | None = base.setting("Transformer heads", kind=base.positive_int)
    layers: int | None = base.setting(
        "Transformer encoder and decoder layers each", kind=base.positive_int
    )
    positions: str | None = base.setting(
        "Transformer positions: sinusoidal (Vaswani et al.), learned, or rotary (RoPE, relative)",
        choices=POSITIONS,
    )
    n: int | None = base.setting("generated pairs", kind=base.positive_int)
    target: float | None = base.setting(
        "stop at this held-out exact match (0..1)", kind=base.fraction
    )
    normalize: list[str] | None = base.setting(
        "input normalisation, comma-separated steps, "
        "or 'none' (default: the task's; for --data, "
        "the steps its inputs already satisfy)",
        kind=_steps,
    )
    unknown_token: bool | None = base.setting(
        "give the model an id for characters it never saw, instead of refusing inputs with them",
        kind=bool,
    )


@dataclass
class PairsSettings(Seq2SeqSettings):
    """``attnkit train pairs --data FILE``: a user's file of pairs."""

    data: str | None = base.setting(
        "a file of (input, target) pairs: TSV, CSV or a JSON list "
        "of pairs (model size and schedule follow from it)",
        kind=base.path,
    )


FROM_DATA = "from the data"  # the default of a setting that data_defaults decides
KINDS = {"cross": "cross", "encoder": "encoder", "decoder": "decoder_self"}


def _extend(vocab: tasks.CharVocab, pairs) -> tasks.CharVocab:
    """The vocabulary plus any target character outside it: encodes every target of ``pairs``
    (the targets are only compared as text; decoding uses the model's vocabulary)."""
    extra = {c for _, t in pairs for c in t} - set(vocab.stoi)
    return tasks.CharVocab(vocab.to_list() + sorted(extra)) if extra else vocab


class Seq2SeqRecipe(base.Recipe):
    """String-to-string tasks (``dates``, ``times``; ``pairs``: a user's file) with the RNN
    encoder-decoder or the Transformer."""

    what = "a seq2seq model"
    models = MODELS
    options = {
        "eval": frozenset({"data"}),
        "predict": frozenset({"texts", "json", "plot", "beam"}),
        "show": frozenset({"texts", "out", "kind", "layer", "head"}),
        "export": frozenset({"out"}),
    }

    def __init__(self, name: str, help: str, file: bool = False) -> None:
        self.name, self.help, self.file = name, help, file
        self.settings = PairsSettings if file else Seq2SeqSettings

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        model = model or MODELS[0]
        task = None if self.file else self.name
        model_kw, tcfg = resolve(task, {}, model)
        out = base.resolved(entry(model).config_cls, model_kw, tcfg)
        base.add_layers(out)
        if self.file:  # size and schedule follow from the file (data_defaults)
            out.update(dict.fromkeys(data_defaults([("x", "x")]), FROM_DATA), data=None)
        else:
            out["n"] = round(tasks.get(self.name).default_n * DATA_SCALE.get(model, 1.0))
        out.update(normalize=None, unknown_token=False, minutes=None)
        return out

    def train(self, settings: Seq2SeqSettings, job: base.Job) -> Run:
        kw = settings.given()
        model = kw.pop("model", None)
        base.split_layers(kw)
        data = kw.pop("data", None)
        if self.file and data is None and not job.resume:
            raise SettingsError(
                f"give a task ({', '.join(base.names())}: attnkit train "
                "--help) or a file of pairs (--data FILE: TSV, CSV or JSON)"
            )
        task = None if self.file else self.name
        return train(
            task,
            data,
            n=kw.pop("n", None),
            **job.arguments(),
            normalize=kw.pop("normalize", None),
            unknown_token=bool(kw.pop("unknown_token", False)),
            model=model,
            **kw,
        )

    def trained(self, run: Run, job: base.Job) -> list[str]:
        m = run.config["metrics"]
        return [
            f"best held-out exact match {m['exact_match']:.4f}, character accuracy "
            f"{m['char_accuracy']:.4f} (epoch {run.config['epoch']}); checkpoint in "
            f"{job.out}"
        ]

    def load(self, checkpoint: str | Path) -> Run:
        return load(checkpoint)

    def evaluate(self, run: Run, options: base.Options) -> dict[str, Any]:
        import sys

        pairs = read_pairs(options.data) if options.data else held_out_pairs(run.config)
        readable_rows = [not run.task.input_problem(s) for s, _ in pairs]
        ok = [p for p, fine in zip(pairs, readable_rows, strict=True) if fine]
        bad = [p for p, fine in zip(pairs, readable_rows, strict=True) if not fine]
        outputs = []
        if ok:
            # targets may hold characters the model cannot write: score them as text, not ids
            readable = PairTask(
                run.task.src_vocab,
                _extend(run.task.tgt_vocab, ok),
                run.task.max_input_len,
                run.task.normalizer,
            )
            outputs = run.task.decode_all(run.model, readable.dataset(ok))
        outputs += [""] * len(bad)  # unreadable rows count as wrong
        targets = [t for _, t in ok] + [t for _, t in bad]
        if bad:
            print(
                f"attnkit eval: {len(bad)} of {len(pairs)} inputs have characters outside "
                "the vocabulary or are empty/too long; counted as wrong",
                file=sys.stderr,
            )
        return {
            "exact_match": tasks.exact_match(outputs, targets),
            "char_accuracy": tasks.char_accuracy(outputs, targets),
            "n": len(pairs),
            "unreadable": len(bad),
        }

    def export(self, run: Run, out: Path, **options: Any) -> list[Path]:
        """``out/encoder.onnx``, ``out/step.onnx`` and ``out/model.json`` (the vocabularies
        and normalisation with them); see :mod:`attnkit.export.sequences`."""
        from ..export import sequences

        return sequences.export(run, Path(out), recipe=self.name)

    def load_exported(self, directory: Path, meta: dict[str, Any]) -> Run:
        from ..export.sequences import OnnxDecoder

        task = base.task_of(f"{directory}/model.json", meta, tasks.from_config)
        return Run(OnnxDecoder(directory), task, {"task": meta.get("task"), "export": meta})

    def format_scores(self, scores: dict[str, Any], options: base.Options) -> str:
        lines = [
            f"{'examples':<16}{scores['n']}",
            f"{'exact match':<16}{scores['exact_match']:.4f}",
            f"{'char accuracy':<16}{scores['char_accuracy']:.4f}",
        ]
        if scores["unreadable"]:
            lines.append(f"{'unreadable':<16}{scores['unreadable']}")
        return "\n".join(lines)

    def _predict(self, run: Run, texts: list[str], beam: int = 1):
        try:
            return run.task.predict(run.model, texts, beam=beam)
        except ValueError as err:
            raise SettingsError(str(err)) from None

    def predict(self, run: Run, options: base.Options) -> list[base.Prediction]:
        from ..viz import save_heatmap

        if not options.texts:
            raise SettingsError("give the text(s) to predict")
        plots = Path(options.plot) if options.plot else None
        if plots is not None and plots.exists() and not plots.is_dir():
            raise SettingsError(f"--plot {plots} is a file; name a directory for the PNGs")
        results = self._predict(run, options.texts, options.beam)
        out = []
        for i, (text, (output, weights)) in enumerate(zip(options.texts, results, strict=True)):
            rows = [[round(float(x), 6) for x in row] for row in weights]
            record = {"input": text, "output": output, "weights": rows}
            out.append(base.Prediction(record, f"{text}\t{output}"))
            if plots is not None:
                save_heatmap(
                    weights,
                    run.task.normalize(text),
                    output_labels(output, weights),
                    plots / f"{i:03d}.png",
                    title=text,
                )
        return out

    def show(self, run: Run, options: base.Options, png: Path) -> list[str]:
        from ..viz import render_weights, save_heatmap

        text = _one_text(options)
        transformer = hasattr(run.model, "decoder") and hasattr(run.model, "encoder")
        if not transformer and (
            options.layer is not None or options.head is not None or options.kind
        ):
            raise SettingsError("--layer, --head and --kind are for Transformer checkpoints")
        ((out, weights),) = self._predict(run, [text])
        if transformer:
            return _show_heads(run, options, text, out, png)
        read = run.task.normalize(text)  # what the model read: one column per character
        rows = output_labels(out, weights)
        path = save_heatmap(weights, read, rows, png, title=text)
        return [
            f"{text} -> {out}\n",
            render_weights(weights, rows, list(read)),
            f"\nheatmap written to {path}",
        ]

    def serve_card(self, run: Run) -> dict[str, Any]:
        card = super().serve_card(run)
        transformer = hasattr(run.model, "decoder") and hasattr(run.model, "encoder")
        card.update(
            kind="seq2seq",
            transformer=transformer,
            layers=len(run.model.decoder) if transformer else None,
            heads=run.model.cfg.num_heads if transformer else None,
        )
        return card

    def serve_predict(self, run: Run, text: str, beam: int = 1) -> dict[str, Any]:
        ((out, weights),) = run.task.predict(run.model, [text], beam=beam)
        read = list(run.task.normalize(text))
        written = output_labels(out, weights)
        result = {
            "kind": "seq2seq",
            "input": text,
            "output": out,
            "input_tokens": read,
            "output_tokens": written,
            "weights": base.rounded(weights),
        }
        if hasattr(run.model, "decoder") and hasattr(run.model, "encoder"):
            maps = transformer_weights(run, text, out)
            layers = [m[0, :, : len(written), : len(read)] for m in maps.cross]
            result["layers"] = [base.rounded(m) for m in layers]  # [layer][head][row][col]
        return result


def _one_text(options: base.Options) -> str:
    if len(options.texts) != 1:
        raise SettingsError(f"give one text to show, got {len(options.texts)}")
    return options.texts[0]


def _show_heads(run: Run, options: base.Options, text: str, out: str, png: Path) -> list[str]:
    """All heads of one layer of a Transformer, teacher-forced on its own output: a PNG grid,
    and one head in the terminal."""
    from ..viz import render_weights, save_head_grid

    kind = options.kind or "cross"
    layer, head = (-1 if options.layer is None else options.layer), options.head or 0
    stack = run.model.encoder if kind == "encoder" else run.model.decoder
    if not -len(stack) <= layer < len(stack):
        raise SettingsError(
            f"--layer {layer}: the {kind} has {len(stack)} layers "
            f"(0..{len(stack) - 1}, or -1 for the last)"
        )
    heads = run.model.cfg.num_heads
    if head >= heads:
        raise SettingsError(f"--head {head}: the model has {heads} heads (0..{heads - 1})")
    layer %= len(stack)
    all_weights = transformer_weights(run, text, out, layers=[layer])
    weights = getattr(all_weights, KINDS[kind])[layer][0]  # (H, rows, cols)
    read = list(run.task.normalize(text))
    written = list(out) + [END]
    rows, cols = {
        "cross": (written, read),
        "encoder": (read, read),
        "decoder": (written, [START, *out]),
    }[kind]
    weights = weights[:, : len(rows), : len(cols)]
    path = save_head_grid(weights, cols, rows, png, title=f"{text}: layer {layer} {kind} attention")
    return [
        f"{text} -> {out}\n",
        f"layer {layer} {kind} attention, head {head}:\n",
        render_weights(weights[head], rows, cols),
        f"\nall {heads} heads written to {path}",
    ]
