"""The translation recipe: English-Spanish verse pairs, subword vocabularies, an RNN
encoder-decoder (with additive attention, or none) or a Transformer, the trainer, and scoring
with sacreBLEU.

The corpus is ``attnkit.tasks.translation.parallel_corpus()`` (split by book), or a given
:class:`~attnkit.tasks.translation.ParallelCorpus` (tests use a few verses). Training batches
hold verses of similar length (:func:`length_batches`), so little of a batch is padding. The
best epoch by chrF on (a fixed sample of) the validation books is kept; ``evaluate`` scores the
test books.

    >>> from attnkit.recipes import translate
    >>> translate.resolve("rnn", {"hidden_dim": 64})[0]["hidden_dim"]
    64
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models import ATTENTIONS, build, entry
from ..models.seq2seq import DATA_FIELDS
from ..models.transformer import POSITIONS
from ..tasks import translation as tr
from ..tasks.translation import ParallelCorpus, TranslationTask
from ..train import CheckpointError, TrainConfig, fit, load_model
from ..train.loop import SettingsError
from ..train.samplers import length_batches
from . import base
from .base import merge_settings, saved_settings

__all__ = [
    "MODELS",
    "TranslateRun",
    "Translation",
    "evaluate",
    "length_batches",
    "load",
    "resolve",
    "train",
    "translate",
]

# the command line's model names: (registered model, its fixed settings)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("seq2seq", {}),
    "transformer": ("transformer", {}),
}
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # Bahdanau et al. 2014 use 620-wide embeddings and 1000 units; these fit a CPU budget
    "rnn": {
        "embed_dim": 128,
        "hidden_dim": 384,
        "attn_dim": 192,
        "dropout": 0.2,
        "lr": 2e-3,
        "batch_size": 64,
        "epochs": 12,
        "clip": 1.0,
        "patience": 12,
    },
    # a training batch costs about what the RNN's does (a tied output layer, a shallower
    # decoder, a narrower feed-forward), so both see the same number of verses per budget;
    # rotary positions are relative (Su et al. 2021), so a long verse's offsets between nearby
    # subwords are ones the model has trained on
    "transformer": {
        "d_model": 256,
        "num_heads": 4,
        "encoder_layers": 3,
        "decoder_layers": 2,
        "ff_dim": 512,
        "tie_embeddings": True,
        "positions": "rotary",
        "dropout": 0.1,
        "lr": 1e-3,
        "warmup": 0.05,
        "batch_size": 64,
        "epochs": 12,
        "patience": 12,
    },
}
VOCAB_SIZE = 4000  # subwords per language
VALID_SAMPLE = 600  # validation verses decoded after each epoch (a fixed sample)
JOINED = 0.5  # extra training pairs of two consecutive verses, per training verse
BATCH_BY = "tokens"  # training batches of about equal subwords ("verses": equal verses)
BATCH_CHOICES = ("tokens", "verses")
MAX_TRAIN_SUBWORDS = 160  # longer training verses are left out (a few dozen); tests keep all


class TranslateRun(base.Run):
    """A trained or loaded translation model, its task (the two vocabularies) and config.json."""

    task: TranslationTask


@dataclass
class Translation:
    """One input's translation: the text, the source and output subwords, and the attention of
    each output subword (and of the end of sequence) over the source subwords."""

    text: str
    source_pieces: list[str]
    output_pieces: list[str]
    weights: Tensor  # (len(output_pieces) + ended, len(source_pieces))
    output_ids: list[int]


def _registered(model: str) -> str:
    if model not in MODELS:
        raise SettingsError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    return MODELS[model][0]


def resolve(model: str, settings: dict[str, Any]) -> tuple[dict[str, Any], TrainConfig]:
    """(model config overrides, TrainConfig) from the model's presets and explicit settings
    (None = not given)."""
    own = frozenset(f.name for f in fields(entry(_registered(model)).config_cls))
    presets = {**MODEL_PRESETS[model], **MODELS[model][1]}
    return merge_settings(settings, model, own, DATA_FIELDS, presets)


def train(
    direction: str = "en-es",
    *,
    out: str | Path,
    model: str | None = None,
    corpus: ParallelCorpus | None = None,
    vocab_size: int | None = None,
    joined: float | None = None,
    batch_by: str | None = None,
    **settings: Any,
) -> TranslateRun:
    """Train a translation model in ``direction`` ("en-es" or "es-en") on the verse pairs (or
    a given ``corpus``); keep the best by validation chrF in ``out``. ``model`` is "rnn"
    (``attention="none"`` for the baseline without attention) or "transformer"; ``settings``
    are fields of its config or of TrainConfig (``time_limit=1800``, ...). ``joined`` (default
    ``JOINED``) adds that many pairs per training verse made of two consecutive verses
    (``tasks.translation.joined_verses``), so long inputs are not rare in training.
    ``batch_by`` (default ``BATCH_BY``) is "tokens": a batch holds about ``batch_size`` times
    the mean pair length in subwords, so every target subword weighs alike in the loss (see
    :func:`length_batches`); or "verses": ``batch_size`` pairs a batch. A resumed run keeps its
    own settings and vocabularies. The job's options (:class:`~attnkit.recipes.base.Job`:
    ``resume``, ``threads``, ``log``, ...) come in ``settings`` too."""
    if direction not in tr.DIRECTIONS:
        raise SettingsError(f"direction must be one of {', '.join(tr.DIRECTIONS)}")
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "translate", "translation")
    if saved is not None:
        kind = (saved.get("data") or {}).get("model_kind")
        if model is not None and model != kind:
            raise SettingsError(f"{out} holds a {kind} run, not {model}")
        model, direction = kind, saved["task"]["direction"]
        settings = saved_settings(saved, settings, DATA_FIELDS)
        joined = (saved.get("data") or {}).get("joined", 0.0)
        batch_by = (saved.get("data") or {}).get("batch_by", "verses")
    joined = JOINED if joined is None else joined
    batch_by = BATCH_BY if batch_by is None else batch_by
    if batch_by not in BATCH_CHOICES:
        raise SettingsError(f"batch_by must be {' or '.join(BATCH_CHOICES)}, got {batch_by!r}")
    model = model or "rnn"
    model_kw, tcfg = resolve(model, {**settings, "progress": job.progress})
    torch.manual_seed(tcfg.seed)
    given = corpus is not None
    corpus = corpus if given else tr.parallel_corpus()
    train_pairs = tr.as_pairs(corpus.train, direction)
    extra = tr.joined_verses(corpus.train, joined, tcfg.seed)  # checks joined, before vocabularies
    if saved is not None:
        task = TranslationTask.from_config(saved["task"])
    else:
        job.log(
            f"training {vocab_size or VOCAB_SIZE} subwords per language on "
            f"{len(train_pairs):,} verse pairs"
        )
        task = TranslationTask.from_pairs(
            train_pairs, vocab_size=vocab_size or VOCAB_SIZE, direction=direction
        )
    train_pairs += tr.as_pairs(extra, direction)
    train_ds = task.dataset(train_pairs)
    if not given:  # the few longest verses cost a batch of padding each; tests keep all
        keep = torch.nonzero(
            (train_ds.src_len <= MAX_TRAIN_SUBWORDS)
            & (train_ds.tgt.ne(0).sum(1) <= MAX_TRAIN_SUBWORDS)
        )[:, 0]
        train_ds = task.dataset([train_pairs[i] for i in keep.tolist()])
    valid_pairs = tr.sample(tr.as_pairs(corpus.valid, direction), VALID_SAMPLE, tcfg.seed)
    valid_ds = task.dataset(valid_pairs)
    registered = _registered(model)
    tgt_len = train_ds.tgt.ne(0).sum(1)  # subwords of each target, its end of sequence included
    longest_out = int(tgt_len.max())
    data_kw: dict[str, Any] = dict(
        max_output_len=2 * longest_out + 10, pad_id=0, bos_id=1, eos_id=2
    )
    if registered == "transformer":
        data_kw["max_len"] = max(task.max_input_len, data_kw["max_output_len"]) + 1
    else:
        data_kw["max_source_len"] = task.max_input_len
    cfg = entry(registered).config_cls(
        len(task.src_vocab), len(task.tgt_vocab), **data_kw, **model_kw
    )
    net = build(registered, cfg)
    params = sum(p.numel() for p in net.parameters())
    what = f"attention {cfg.attention}" if registered == "seq2seq" else "transformer"
    job.log(
        f"{direction}: {len(train_ds):,} training pairs (with {len(extra):,} of two joined "
        f"verses), {len(valid_ds):,} validation; "
        f"{model} ({what}), {params:,} parameters"
    )
    source = {
        **corpus.source,
        "model_kind": model,
        "given": given,
        "joined": joined,
        "batch_by": batch_by,
    }
    meta = {"task": task.to_config(), "data": source}
    tokens = batch_by == "tokens"  # then by the subwords of a pair, both sides
    sizes = train_ds.src_len + tgt_len if tokens else train_ds.src_len
    sampler = length_batches(sizes, tcfg.batch_size, tcfg.seed, tokens=tokens)
    state = fit(
        net, task, train_ds, valid_ds, tcfg, out, meta, resume=resume, log=job.log, sampler=sampler
    )
    return base.finish(load, out, state)


def load(checkpoint: str | Path) -> TranslateRun:
    """The translation model and task saved in ``checkpoint``."""
    model, config = load_model(checkpoint)
    task = base.task_of(f"{checkpoint}/config.json", config, TranslationTask.from_config)
    sizes = (len(task.src_vocab), len(task.tgt_vocab))
    if sizes != (model.cfg.src_vocab_size, model.cfg.tgt_vocab_size):
        raise CheckpointError(
            f"{checkpoint}/config.json: vocabularies of {sizes} entries do not match the model's"
        )
    return TranslateRun(model, task, config)


def held_out(run: TranslateRun, split: str = "test") -> list[tuple[str, str]]:
    """The (source, reference) verses of the run's test (or validation) books."""
    if split not in ("test", "valid"):
        raise SettingsError(f"split must be test or valid, got {split!r}")
    source = run.config.get("data") or {}
    if source.get("given") or source.get("corpus") != "web-sparv":
        raise SettingsError("this model was trained on a given corpus: pass the pairs to score")
    corpus = tr.parallel_corpus()
    return tr.as_pairs(getattr(corpus, split), run.task.direction)


def evaluate(
    run: TranslateRun, pairs: list[tuple[str, str]] | None = None, beam: int = 1
) -> tuple[dict[str, Any], list[str]]:
    """(sacreBLEU BLEU and chrF with signatures, the translations) of ``pairs`` (default: the
    test books)."""
    pairs = held_out(run) if pairs is None else pairs
    if not pairs:
        raise SettingsError("no pairs to score")
    if beam > 1:
        outputs = [t.text for t in translate(run, [s for s, _ in pairs], beam=beam)]
    else:
        outputs = run.task.decode_all(run.model, run.task.dataset(pairs), batch_size=128)
    return tr.corpus_scores(outputs, [t for _, t in pairs]), outputs


@torch.no_grad()
def translate(run: TranslateRun, texts: list[str], beam: int = 1) -> list[Translation]:
    """Each text translated (greedy, or a beam of ``beam``), with the attention of every output
    subword over the source subwords: the RNN's attention weights, or the Transformer's last
    cross-attention layer averaged over heads (see :func:`cross_attention` for all of them).
    Texts of similar length decode together. ValueError for an empty or over-long text."""
    task, results = run.task, []
    for src_ids, out_ids, weights in task.decode_many(run.model, texts, beam):
        results.append(
            Translation(
                task.tgt_vocab.decode(out_ids),
                task.src_vocab.pieces(src_ids),
                task.tgt_vocab.pieces(out_ids),
                weights.float(),
                out_ids,
            )
        )
    return results


@torch.no_grad()
def cross_attention(run: TranslateRun, text: str, output_ids: list[int]) -> Tensor:
    """The Transformer's cross-attention for ``text`` and its translation ``output_ids``,
    teacher-forced: (layers, heads, len(output_ids) + 1, source subwords); the last row is the
    end of sequence."""
    model = run.model.eval()
    if not hasattr(model, "decoder"):
        raise ValueError("per-layer, per-head cross-attention is the Transformer's")
    ids = run.task.src_vocab.encode(run.task.normalize(text))
    tgt = torch.tensor([[*output_ids, model.cfg.eos_id]])
    _, weights = model(torch.tensor([ids]), torch.tensor([len(ids)]), tgt, return_weights=True)
    return torch.stack([w[0] for w in weights.cross]).float()


# -- the recipe protocol (recipes.base): `attnkit train translate`, eval; the model that
# `attnkit translate` reads ------------------------------------------------------------------


@dataclass
class TranslateSettings(base.TrainSettings):
    """``attnkit train translate``: English-Spanish on Bible verse pairs."""

    model: str | None = base.setting(
        "the RNN encoder-decoder (attention none for the baseline without) or a Transformer",
        choices=MODELS,
    )
    direction: str | None = base.setting("en-es or es-en", choices=tr.DIRECTIONS)
    vocab_size: int | None = base.setting("subwords per language", kind=base.positive_int)
    joined: float | None = base.setting(
        "also train on pairs of two consecutive verses joined, "
        "this many per training verse (0: none), so long verses "
        "are not rare",
        kind=base.fraction,
    )
    batch_by: str | None = base.setting(
        "training batches of about equal subwords, so every "
        "subword weighs alike in the loss, or of equal verses",
        choices=BATCH_CHOICES,
    )
    attention: str | None = base.setting("the RNN's attention", choices=ATTENTIONS)
    hidden_dim: int | None = base.setting("the RNN decoder's state size", kind=base.positive_int)
    d_model: int | None = base.setting("Transformer width", kind=base.positive_int)
    num_heads: int | None = base.setting("Transformer heads", kind=base.positive_int)
    layers: int | None = base.setting(
        "Transformer encoder and decoder layers each", kind=base.positive_int
    )
    positions: str | None = base.setting("Transformer positions", choices=POSITIONS)


class TranslateRecipe(base.Recipe):
    name = "translate"
    help = "English-Spanish translation on Bible verses"
    what = "a translation model"
    settings = TranslateSettings
    models = tuple(MODELS)
    options = {
        "eval": frozenset({"data", "beam", "save"}),
        "export": frozenset({"out"}),
        "translate": frozenset({"texts", "beam", "json", "plot"}),
    }
    other_verbs = ("translate",)

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        model = model or self.models[0]
        model_kw, tcfg = resolve(model, {})
        out = base.resolved(entry(_registered(model)).config_cls, model_kw, tcfg)
        base.add_layers(out)
        return {
            **out,
            "direction": "en-es",
            "vocab_size": VOCAB_SIZE,
            "joined": JOINED,
            "batch_by": BATCH_BY,
            "minutes": None,
        }

    def train(self, settings: TranslateSettings, job: base.Job) -> TranslateRun:
        kw = settings.given()
        base.split_layers(kw)
        return train(kw.pop("direction", "en-es"), **job.arguments(), **kw)

    def trained(self, run: TranslateRun, job: base.Job) -> list[str]:
        m = run.config["metrics"]
        return [
            f"validation chrF {m['chrf']:.2f}, BLEU {m['bleu']:.2f} (epoch "
            f"{run.config['epoch']}); checkpoint in {job.out}",
            f"score the test books: attnkit eval --checkpoint {job.out}",
        ]

    def load(self, checkpoint: str | Path) -> TranslateRun:
        return load(checkpoint)

    def export(self, run: TranslateRun, out: Path, **options: Any) -> list[Path]:
        """``out/encoder.onnx``, ``out/step.onnx`` and ``out/model.json`` (both sentencepiece
        models with them); see :mod:`attnkit.export.sequences`."""
        from ..export import sequences

        return sequences.export(run, Path(out), recipe=self.name)

    def load_exported(self, directory: Path, meta: dict[str, Any]) -> TranslateRun:
        from ..export.sequences import OnnxDecoder

        task = base.task_of(f"{directory}/model.json", meta, TranslationTask.from_config)
        return TranslateRun(
            OnnxDecoder(directory), task, {"task": meta.get("task"), "export": meta}
        )

    def evaluate(self, run: TranslateRun, options: base.Options) -> dict[str, Any]:
        from ..tasks import read_pairs

        pairs = read_pairs(options.data) if options.data else None
        scores, outputs = evaluate(run, pairs, beam=options.beam)
        if options.save:
            pairs = pairs or held_out(run)
            out = Path(options.save)
            out.mkdir(parents=True, exist_ok=True)
            for name, lines in (
                ("source.txt", [s for s, _ in pairs]),
                ("reference.txt", [t for _, t in pairs]),
                ("hypothesis.txt", outputs),
            ):
                (out / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return scores

    def format_scores(self, scores: dict[str, Any], options: base.Options) -> str:
        lines = [
            f"{'verses':<8}{scores['n']}",
            f"{'BLEU':<8}{scores['bleu']:.2f}  {scores['bleu_signature']}",
            f"{'chrF':<8}{scores['chrf']:.2f}  {scores['chrf_signature']}",
        ]
        if options.save:
            lines.append(f"source, reference and hypothesis written to {options.save}/")
        return "\n".join(lines)
