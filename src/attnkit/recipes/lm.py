"""The language-model recipe: a text, a character LM (decoder-only Transformer or LSTM), the
trainer, and sampling from the result.

The text is the World English Bible (``attnkit.tasks.lm.default_corpus``, split by book) or a
user's UTF-8 file (split 90/5/5 at line ends). Training windows start at random offsets, a new
draw every epoch; an epoch is as many windows as the training text holds. The best epoch by
validation bits per character is kept; ``evaluate`` scores the test part.

    >>> from attnkit.recipes import lm
    >>> lm.resolve({"d_model": 64}, "decoder-only")[0]
    {'d_model': 64}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..models import build, entry
from ..models.transformer import POSITIONS
from ..tasks import lm as lm_task
from ..tasks.lm import Corpus, LMTask
from ..train import CheckpointError, TrainConfig, fit, load_model
from ..train.loop import SettingsError
from . import base
from .base import merge_settings, saved_settings

__all__ = [
    "CONTEXT",
    "MODELS",
    "LMRun",
    "corpus_of",
    "evaluate",
    "generate",
    "load",
    "resolve",
    "train",
]

MODELS = ("decoder-only", "lstm-lm")
CONTEXT = 128  # characters a window holds (the Transformer's attention span)
# per model, by field name; explicit settings win
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "decoder-only": {"lr": 2e-3, "warmup": 0.02, "batch_size": 32, "epochs": 10},
    "lstm-lm": {"lr": 2e-3, "batch_size": 32, "epochs": 10},
}
DATA_FIELDS = frozenset({"vocab_size", "pad_id", "max_len"})  # from the text, never settings
MAX_FILE_CHARS = 200_000_000


class LMRun(base.Run):
    """A trained or loaded language model, its task (the vocabulary) and config.json."""

    task: LMTask


def model_fields(model: str) -> frozenset[str]:
    if model not in MODELS:
        raise SettingsError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return frozenset(f.name for f in fields(entry(model).config_cls))


def resolve(
    settings: dict[str, Any], model: str = "decoder-only"
) -> tuple[dict[str, Any], TrainConfig]:
    """(model config overrides, TrainConfig) from the model's presets and explicit settings
    (None means "not given")."""
    return merge_settings(settings, model, model_fields(model), DATA_FIELDS, MODEL_PRESETS[model])


def _read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    if path.stat().st_size > MAX_FILE_CHARS * 4:
        raise SettingsError(f"{path} is over {MAX_FILE_CHARS * 4 // 10**6} MB")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SettingsError(f"{path} is not UTF-8 text (byte {err.start}): {err.reason}") from None


def corpus_of(source: dict[str, Any]) -> Corpus:
    """The corpus a run's data description names: the default Bible or a file."""
    if source.get("file"):
        return lm_task.corpus_from_text(_read_text(source["file"]), source)
    if source.get("corpus") == "web":
        return lm_task.default_corpus()
    raise CheckpointError(f"config.json: unusable data description {source}")


def _sampler(task_data, seed: int):
    def sample(epoch: int, n: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        return torch.randint(task_data.starts, (n,), generator=gen)

    return sample


def train(
    data: str | Path | None = None,
    *,
    out: str | Path,
    model: str | None = None,
    context: int | None = None,
    corpus: Corpus | None = None,
    **settings: Any,
) -> LMRun:
    """Train a character LM on the default corpus, a text file (``data``) or a given
    ``corpus``; keep the best in ``out``. ``settings`` are fields of the model's config or of
    TrainConfig (``d_model=128``, ``time_limit=600``, ...). The job's options
    (:class:`~attnkit.recipes.base.Job`: ``resume``, ``threads``, ``log``, ...)
    come in ``settings`` too. A resumed run keeps its own."""
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "lm", "language model")
    if saved is not None:
        if model is not None and model != saved.get("model"):
            raise SettingsError(f"{out} holds a {saved.get('model')} run, not {model}")
        model = saved["model"]
        settings = saved_settings(saved, settings, DATA_FIELDS)
        data = (saved.get("data") or {}).get("file") or data
        context = saved["task"].get("context", context)
    model = model or "decoder-only"
    model_kw, tcfg = resolve({**settings, "progress": job.progress}, model)
    context = context or CONTEXT
    if corpus is None:
        corpus = (
            lm_task.corpus_from_text(_read_text(data), {"file": str(data)})
            if data
            else lm_task.default_corpus()
        )
    task = (
        LMTask.from_config(saved["task"])
        if saved is not None
        else LMTask.from_text(corpus.train, context, corpus.valid, corpus.test)
    )
    train_ds, valid_ds = task.dataset(corpus.train), task.dataset(corpus.valid)
    cfg = entry(model).config_cls(
        len(task.vocab), pad_id=task.vocab.pad_id, max_len=context + 1, **model_kw
    )
    torch.manual_seed(tcfg.seed)
    net = build(model, cfg)
    params = sum(p.numel() for p in net.parameters())
    job.log(
        f"{len(corpus.train):,} training characters, {len(corpus.valid):,} validation; "
        f"{model}, {params:,} parameters, context {context}"
    )
    meta = {"task": task.to_config(), "data": base.with_digest(corpus.source)}
    state = fit(
        net,
        task,
        train_ds,
        valid_ds,
        tcfg,
        out,
        meta,
        resume=resume,
        log=job.log,
        sampler=_sampler(train_ds, tcfg.seed),
    )
    return base.finish(load, out, state)


def load(checkpoint: str | Path) -> LMRun:
    """The language model and task saved in ``checkpoint``."""
    model, config = load_model(checkpoint)
    task = base.task_of(f"{checkpoint}/config.json", config, LMTask.from_config)
    if len(task.vocab) != model.cfg.vocab_size:
        raise CheckpointError(
            f"{checkpoint}/config.json: a vocabulary of {len(task.vocab)} "
            f"does not match the model's {model.cfg.vocab_size}"
        )
    return LMRun(model, task, config)


def evaluate(run: LMRun, text: str | None = None) -> dict[str, float]:
    """Bits per character of ``text``, by default the test part of the run's corpus."""
    if text is None:
        text = corpus_of(run.config.get("data") or {}).test
    return run.task.evaluate(run.model, run.task.dataset(text))


MAX_GENERATE = 100_000  # characters one generate call may add (about a minute of a small model)


def generate(run: LMRun, prompt: str, length: int = 200, **sampling: Any) -> str:
    """``length`` characters continuing ``prompt``: the pieces of :func:`stream` joined
    (``sampling``: its ``temperature``, ``top_k`` and ``seed``; greedy at temperature 0)."""
    return "".join(stream(run, prompt, length, **sampling))


def stream(
    run: LMRun,
    prompt: str,
    length: int = 200,
    *,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
) -> Iterator[str]:
    """The continuation of ``prompt`` piece by piece as it is generated, ``length`` characters
    in all (at most :data:`MAX_GENERATE`).

    The model never reads more than the context it was trained on: when a continuation
    reaches it, generation goes on from the last half-context of characters (re-read once),
    so any length up to the cap can be asked for."""
    if not prompt:
        raise SettingsError("the prompt is empty")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise SettingsError(f"length must be an int >= 1, got {length!r}")
    if length > MAX_GENERATE:
        raise SettingsError(f"length must be at most {MAX_GENERATE:,} characters, got {length:,}")
    span = run.model.cfg.max_len - 1  # the training context
    seq = run.task.encode(prompt)[None]
    gen = torch.Generator().manual_seed(seed)
    produced = 0
    while produced < length:
        keep = seq[:, -(span // 2 if seq.shape[1] >= span else span) :]
        n = min(length - produced, span + 1 - keep.shape[1])
        out = run.model.generate(keep, n, temperature=temperature, top_k=top_k, generator=gen)
        new = out[:, keep.shape[1] :]
        seq = torch.cat([seq, new], dim=1)
        produced += n
        yield run.task.vocab.decode(new[0].tolist())


# -- the recipe protocol (recipes.base): `attnkit train lm`, eval, and generate's model ----


@dataclass
class LMSettings(base.TrainSettings):
    """``attnkit train lm``: a character language model."""

    model: str | None = base.setting("a decoder-only Transformer or an LSTM", choices=MODELS)
    data: str | None = base.setting(
        "a UTF-8 text file (default: the World English Bible, split by book)", kind=base.path
    )
    context: int | None = base.setting("characters per training window", kind=base.positive_int)
    d_model: int | None = base.setting("Transformer width", kind=base.positive_int)
    num_heads: int | None = base.setting("Transformer heads", kind=base.positive_int)
    layers: int | None = base.setting("the model's layers", kind=base.positive_int)
    positions: str | None = base.setting("Transformer positions", choices=POSITIONS)
    hidden_dim: int | None = base.setting("LSTM state size", kind=base.positive_int)


class LMRecipe(base.Recipe):
    name = "lm"
    help = "a character language model (default text: the World English Bible)"
    what = "a language model"
    settings = LMSettings
    models = MODELS
    options = {"eval": frozenset({"data"}), "export": frozenset({"out"})}
    other_verbs = ("generate",)

    def export(self, run: LMRun, out: Path, **options: Any) -> list[Path]:
        """``out/prompt.onnx``, ``out/step.onnx`` and ``out/model.json`` (the vocabulary with
        them); see :mod:`attnkit.export.lm`."""
        from ..export import lm

        return lm.export(run, Path(out), recipe=self.name)

    def load_exported(self, directory: Path, meta: dict[str, Any]) -> LMRun:
        from ..export.lm import OnnxLM

        task = base.task_of(f"{directory}/model.json", meta, LMTask.from_config)
        return LMRun(OnnxLM(directory), task, {"task": meta.get("task"), "export": meta})

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        model = model or MODELS[0]
        model_kw, tcfg = resolve({}, model)
        values = base.resolved(entry(model).config_cls, model_kw, tcfg)
        return {**values, "data": None, "context": CONTEXT, "minutes": None}

    def train(self, settings: LMSettings, job: base.Job) -> LMRun:
        kw = settings.given()
        return train(kw.pop("data", None), **job.arguments(), **kw)

    def trained(self, run: LMRun, job: base.Job) -> list[str]:
        valid = run.config["metrics"]["bits_per_char"]
        test = evaluate(run)["bits_per_char"]
        return [
            f"validation {valid:.4f} bits per character (epoch {run.config['epoch']}), "
            f"test {test:.4f}; checkpoint in {job.out}",
            f"try: attnkit generate --checkpoint {job.out} 'In the beginning'",
        ]

    def load(self, checkpoint: str | Path) -> LMRun:
        return load(checkpoint)

    def evaluate(self, run: LMRun, options: base.Options) -> dict[str, Any]:
        from ..tasks import UnknownCharactersError

        text = _read_text(options.data) if options.data else None
        try:
            result = evaluate(run, text)
        except UnknownCharactersError as err:
            raise SettingsError(f"{err}; the model cannot score them") from None
        return {"bits_per_char": result["bits_per_char"], "n": int(result["chars"])}

    def format_scores(self, scores: dict[str, Any], options: base.Options) -> str:
        return (
            f"{'characters':<16}{scores['n']}\n{'bits per char':<16}{scores['bits_per_char']:.4f}"
        )
