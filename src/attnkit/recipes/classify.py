"""Text classification: the registered text classifier with a pooling chosen by name, trained
by the generic trainer on labelled text, a TF-IDF + logistic regression baseline on the same
splits, and explanations that set the attention weights beside a gradient attribution.

The corpora are :mod:`attnkit.tasks.classify`'s ("rotten-tomatoes" sentences, "bible-genres"
documents) or a CSV file. The subword vocabulary is trained on the training split only and saved
in the checkpoint; the epoch with the best validation macro-F1 is kept.

Integrated gradients (Sundararajan et al. 2017) attribute the predicted class's logit to the
input tokens: the embeddings are scaled from 0 (the padding embedding) to their values along a
straight path, and each token gets (x - 0) . mean gradient, summed over the embedding. The
attributions sum to the logit's change from the all-zero input (completeness), which the tests
check. :func:`agreement` reports, over held-out examples, the Spearman rank correlation between
the attention weight and the magnitude of the attribution of each token (the question of Jain &
Wallace 2019, "Attention is not Explanation").

    >>> from attnkit.recipes import classify
    >>> classify.POOLINGS
    ('attention', 'gate', 'mean', 'max', 'last', 'self-attention', 'han')
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..models import build, entry
from ..models.classifier import CLASSIFIER_POOLINGS
from ..tasks import classify as tc
from ..tasks.classify import LabelledText, TextCorpus, TextDataset, TextTask
from ..train import CheckpointError, fit, load_model
from ..train.loop import SettingsError
from ..train.samplers import length_batches
from . import base
from .base import merge_settings, saved_settings

__all__ = [
    "POOLINGS",
    "ClassifyRun",
    "Explanation",
    "agreement",
    "baseline",
    "corpus_of",
    "evaluate",
    "explain",
    "held_out",
    "integrated_gradients",
    "load",
    "predict",
    "token_weights",
    "train",
]

POOLINGS = CLASSIFIER_POOLINGS
TOKEN_WEIGHTS = ("attention", "self-attention", "han")  # poolings with a weight per token
DEFAULTS = {"epochs": 10, "batch_size": 64, "lr": 2e-3, "patience": 3}
PRESETS = {"embed_dim": 128, "hidden_dim": 64, "dropout": 0.3}
VOCAB_SIZE = 8000
DATA_FIELDS = frozenset({"vocab_size", "classes", "pooling", "pad_id"})
IG_STEPS = 32


class ClassifyRun(base.Run):
    """A trained or loaded classifier, its task (vocabulary, classes) and config.json."""

    task: TextTask


def corpus_of(data: str | Path | None, documents: bool = False) -> TextCorpus:
    """A corpus by name (:data:`~attnkit.tasks.classify.CORPORA`, default rotten-tomatoes) or
    a CSV file (``documents``: cut its texts into sentences)."""
    data = str(data) if data else "rotten-tomatoes"
    if data in tc.CORPORA:
        return tc.load_corpus({"corpus": data})
    if not Path(data).is_file():
        raise SettingsError(f"no file {data!r}, and it is not a corpus of {', '.join(tc.CORPORA)}")
    return tc.read_labelled(data, documents)


def train(
    data: str | Path | None = None,
    *,
    out: str | Path,
    pooling: str | None = None,
    corpus: TextCorpus | None = None,
    vocab_size: int | None = None,
    **settings: Any,
) -> ClassifyRun:
    """Train a text classifier with ``pooling`` (default "attention") on ``data`` (a corpus
    name or CSV file) or a given ``corpus``; keep the best epoch in ``out``. ``settings`` are
    fields of TextClassifierConfig or of TrainConfig (None: not given), or the job's options
    (:class:`~attnkit.recipes.base.Job`: ``resume``, ``threads``, ``log``, ...)."""
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "classify", "text classifier")
    if saved is not None:
        if pooling is not None and pooling != saved["config"]["pooling"]:
            raise SettingsError(f"{out} holds a {saved['config']['pooling']} run, not {pooling}")
        pooling = saved["config"]["pooling"]
        settings = saved_settings(saved, settings, DATA_FIELDS | {"vocab_size"})
    pooling = pooling or "attention"
    if pooling not in POOLINGS:
        raise SettingsError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    own = frozenset(f.name for f in fields(entry("text-classifier").config_cls)) - DATA_FIELDS
    model_kw, tcfg = merge_settings(
        {**settings, "progress": job.progress}, pooling, own, DATA_FIELDS, {**DEFAULTS, **PRESETS}
    )
    documents = pooling == "han"
    if saved is not None:
        source = saved["data"]
        corpus = corpus or tc.load_corpus(source)
        task = TextTask.from_config(saved["task"])
    else:
        given = corpus is not None
        corpus = corpus if given else corpus_of(data, documents)
        source = {**corpus.source, "given": given}
        task = TextTask.from_corpus(corpus, documents, vocab_size or VOCAB_SIZE)
    if documents and not corpus.documents:
        raise SettingsError("han reads documents of sentences; this corpus holds sentences")
    train_ds, valid_ds = task.dataset(corpus.train), task.dataset(corpus.valid)
    torch.manual_seed(tcfg.seed)
    net = build(
        "text-classifier",
        {
            "vocab_size": len(task.vocab),
            "classes": len(task.classes),
            "pooling": pooling,
            **model_kw,
        },
    )
    params = sum(p.numel() for p in net.parameters())
    job.log(
        f"{source.get('corpus', 'given corpus')}: {len(train_ds):,} training examples, "
        f"{len(valid_ds):,} validation; {len(task.classes)} classes; pooling {pooling}, "
        f"{params:,} parameters"
    )
    meta = {"task": task.to_config(), "data": base.with_digest(source)}
    state = fit(
        net,
        tc.Classification(len(task.classes)),
        train_ds,
        valid_ds,
        tcfg,
        out,
        meta,
        resume=resume,
        log=job.log,
        sampler=length_batches(train_ds.sizes, tcfg.batch_size, tcfg.seed),
    )
    return base.finish(load, out, state)


def load(checkpoint: str | Path) -> ClassifyRun:
    """The classifier saved in ``checkpoint``; CheckpointError if it is not one or its task
    does not fit its model."""
    model, config = load_model(checkpoint)
    task = base.task_of(f"{checkpoint}/config.json", config, TextTask.from_config)
    cfg = model.cfg
    if (len(task.vocab), len(task.classes)) != (cfg.vocab_size, cfg.classes) or (
        task.documents != (cfg.pooling == "han")
    ):
        raise CheckpointError(f"{checkpoint}/config.json: the task does not match the model")
    return ClassifyRun(model, task, config)


def held_out(run: ClassifyRun, split: str = "test") -> list[LabelledText]:
    """The examples of the run's test (or validation) split."""
    source = run.config.get("data") or {}
    if source.get("given"):
        raise SettingsError("this model was trained on a given corpus: pass the examples")
    return tc.load_corpus(source).split(split)


def predict(run: ClassifyRun, texts: list) -> Tensor:
    """(N, classes) probabilities of ``texts`` (strings; documents may be lists of sentences)."""
    data = TextDataset([run.task.encode(t) for t in texts], [0] * len(texts), run.task.documents)
    return tc.scores(run.model, data)


def evaluate(run: ClassifyRun, examples: list[LabelledText]) -> dict[str, float]:
    """Accuracy and macro-F1 of the run on ``examples``."""
    if not examples:
        raise ValueError("no examples to evaluate")
    data = run.task.dataset(examples)
    return {
        **tc.classification_metrics(tc.scores(run.model, data), data.y, len(run.task.classes)),
        "n": len(examples),
    }


def baseline(corpus: TextCorpus, split: str = "test", cs=(0.25, 1.0, 4.0, 16.0)) -> dict:
    """TF-IDF (words and word pairs, sublinear tf) + logistic regression on the corpus's
    training split, its C chosen on validation macro-F1; metrics on ``split``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    started = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform([ex.flat() for ex in corpus.train])
    y_train = [ex.label for ex in corpus.train]
    x_valid = vec.transform([ex.flat() for ex in corpus.valid])
    y_valid = [ex.label for ex in corpus.valid]
    best = None
    for c in cs:
        lr = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        f1 = f1_score(y_valid, lr.predict(x_valid), average="macro")
        if best is None or f1 > best[0]:
            best = (f1, c, lr)
    _, c, lr = best
    held = corpus.split(split)
    probs = torch.from_numpy(lr.predict_proba(vec.transform([ex.flat() for ex in held])))
    y = torch.tensor([ex.label for ex in held])
    return {
        **tc.classification_metrics(probs, y, len(corpus.classes)),
        "C": c,
        "n": len(held),
        "seconds": time.perf_counter() - started,
    }


def _read(model: nn.Module, ids: Tensor, lengths: Tensor):
    """One forward pass: (logits, token weights or None, sentence weights or None), the
    weights as :func:`token_weights` describes them."""
    model.eval()
    with torch.no_grad():
        logits, weights = model(ids, lengths, return_weights=True)
    if model.cfg.pooling == "han":
        words, sents = weights
        return logits, words * sents[..., None], sents
    return logits, weights if model.cfg.pooling in TOKEN_WEIGHTS else None, None


def token_weights(model: nn.Module, ids: Tensor, lengths: Tensor) -> Tensor | None:
    """The attention weight of each token, ids' shape, or None for a pooling without one
    (mean, max, last, and the gate, whose weights are over features). For "han" a word's
    weight is its weight in its sentence times the sentence's weight, so they sum to 1."""
    return _read(model, ids, lengths)[1]


def integrated_gradients(
    model: nn.Module, ids: Tensor, lengths: Tensor, target: int, steps: int = IG_STEPS
) -> Tensor:
    """The integrated gradients of the ``target`` logit for one example (``ids`` (1, T) or
    (1, S, W)), from the all-zero embedding: a tensor of ids' shape, one value per token
    (0 on padding), computed with ``steps`` midpoint steps in one batch."""
    if ids.shape[0] != 1:
        raise ValueError(f"integrated gradients explain one example, got {ids.shape[0]}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    model.eval()
    x = model.embed(ids).detach()
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    path = (alphas.view(-1, *[1] * (x.dim() - 1)) * x).requires_grad_(True)
    logits = model(
        ids.expand(steps, *ids.shape[1:]),
        lengths.expand(steps, *lengths.shape[1:]),
        embeddings=path,
    )
    (grad,) = torch.autograd.grad(logits[:, target].sum(), path)
    return (x * grad.mean(0, keepdim=True)).sum(-1).detach()


@dataclass
class Explanation:
    """One prediction and, per word, its attention weight and attribution."""

    classes: tuple[str, ...]
    probs: list[float]
    label: int  # the predicted class
    sentences: list[list[tuple[str, float | None, float]]]  # (word, weight, attribution)
    sentence_weights: list[float] | None  # HAN only

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.classes[self.label],
            "probabilities": dict(zip(self.classes, self.probs, strict=True)),
            "sentences": [
                [{"word": w, "weight": a, "attribution": g} for w, a, g in s]
                for s in self.sentences
            ],
            "sentence_weights": self.sentence_weights,
        }


def _one(run: ClassifyRun, text) -> tuple[Tensor, Tensor, list[str], list]:
    """(ids, lengths) of one text as a batch of one, and its parts and their ids."""
    parts, encoded = run.task.encode_parts(text)
    ids, lengths = tc.pad([encoded], run.task.documents)
    return ids, lengths, parts, encoded


def explain(run: ClassifyRun, text, steps: int = IG_STEPS) -> Explanation:
    """The prediction for ``text`` with each word's attention weight (None where the pooling
    has none) and integrated-gradients attribution of the predicted class; a word's values
    are the sums over its subwords."""
    ids, lengths, parts, encoded = _one(run, text)
    logits, weights, sentence_weights = _read(run.model, ids, lengths)
    probs = torch.softmax(logits.float(), -1)[0]
    label = int(probs.argmax())
    attr = integrated_gradients(run.model, ids, lengths, label, steps)
    docs = run.task.documents
    rows = encoded if docs else [encoded]
    out = []
    for s, (piece_ids, part) in enumerate(zip(rows, parts, strict=True)):
        sentence = []
        for word, where in run.task.vocab.words(part, piece_ids):
            at = [(s, i) if docs else (i,) for i in where]
            w = None if weights is None else sum(float(weights[0][k]) for k in at)
            sentence.append((word, w, sum(float(attr[0][k]) for k in at)))
        out.append(sentence)
    sent_w = None if sentence_weights is None else sentence_weights[0].tolist()
    return Explanation(run.task.classes, probs.tolist(), label, out, sent_w)


def agreement(
    run: ClassifyRun, examples: list[LabelledText], steps: int = IG_STEPS, progress: bool = False
) -> dict[str, float]:
    """Over ``examples``: the Spearman rank correlation, per example over its tokens, between
    the attention weights and the magnitude of the integrated-gradients attribution of the
    predicted class; its mean and median, the share of examples where it is positive, and
    the share where the token of most attention is among the three of largest attribution.
    Examples with fewer than 3 tokens are skipped. ValueError for a pooling without token
    weights."""
    from scipy.stats import spearmanr
    from tqdm import tqdm

    if run.model.cfg.pooling not in TOKEN_WEIGHTS:
        raise ValueError(f"pooling {run.model.cfg.pooling} has no weight per token")
    rhos, top = [], []
    for ex in tqdm(examples, disable=not progress, desc="attributions", leave=False):
        ids, lengths, _, _ = _one(run, ex.text)
        real = ids.ne(0)  # every real subword's id is past the padding's
        if int(real.sum()) < 3:
            continue
        logits, weights, _ = _read(run.model, ids, lengths)
        label = int(logits.argmax(-1))
        w = weights[real].numpy()
        g = integrated_gradients(run.model, ids, lengths, label, steps)[real].abs().numpy()
        rho = spearmanr(w, g).statistic
        if np.isfinite(rho):
            rhos.append(float(rho))
        top.append(int(np.argmax(w)) in np.argsort(-g)[:3].tolist())
    if not rhos:
        raise ValueError("no example has 3 or more tokens to rank")
    r = np.asarray(rhos)
    return {
        "spearman_mean": float(r.mean()),
        "spearman_median": float(np.median(r)),
        "positive_share": float((r > 0).mean()),
        "top_in_top3": float(np.mean(top)),
        "n": len(rhos),
    }


# -- the recipe protocol (recipes.base): `attnkit train classify`, eval, predict, explain --


@dataclass
class ClassifySettings(base.TrainSettings):
    """``attnkit train classify``: a text classifier."""

    data: str | None = base.setting(
        "rotten-tomatoes, bible-genres or a CSV with text and label "
        "(and group) columns (default: rotten-tomatoes; "
        "bible-genres for han)",
        kind=base.path,
    )
    pooling: str | None = base.setting(
        "how the words' states become one vector (han reads documents)", choices=POOLINGS
    )
    vocab_size: int | None = base.setting("subwords", kind=base.positive_int)
    hidden_dim: int | None = base.setting("the encoder's state size", kind=base.positive_int)


class ClassifyRecipe(base.Recipe):
    name = "classify"
    help = "a text classifier (default data: Rotten Tomatoes snippets)"
    what = "a text classifier"
    settings = ClassifySettings
    options = {
        "eval": frozenset({"data"}),
        "predict": frozenset({"texts", "json"}),
        "explain": frozenset({"texts", "html", "steps", "color"}),
        "export": frozenset({"out"}),
    }

    def export(self, run: ClassifyRun, out: Path, **options: Any) -> list[Path]:
        """``out/model.onnx`` (probabilities and the pooling's weights) and
        ``out/model.json`` (the classes and the sentencepiece model with them); see
        :mod:`attnkit.export.texts`."""
        from ..export import texts

        return texts.export(run, Path(out), recipe=self.name)

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        cfg = entry("text-classifier").config_cls
        values = base.resolved(cfg, {**PRESETS}, base.TrainConfig(**DEFAULTS))
        return {
            **values,
            "data": "rotten-tomatoes",
            "pooling": "attention",
            "vocab_size": VOCAB_SIZE,
            "minutes": None,
        }

    def train(self, settings: ClassifySettings, job: base.Job) -> ClassifyRun:
        kw = settings.given()
        data, pooling = kw.pop("data", None), kw.pop("pooling", None)
        if data is None and pooling == "han" and not job.resume:
            data = "bible-genres"  # han needs documents
        return train(data, pooling=pooling, **job.arguments(), **kw)

    def trained(self, run: ClassifyRun, job: base.Job) -> list[str]:
        m = run.config["metrics"]
        lines = [
            f"validation accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} "
            f"(epoch {run.config['epoch']}); checkpoint in {job.out}"
        ]
        if not run.config["data"].get("given"):
            test = evaluate(run, held_out(run))
            lines.append(
                f"test split: accuracy {test['accuracy']:.4f}, macro-F1 "
                f"{test['macro_f1']:.4f} ({test['n']} examples)"
            )
        lines.append(f"try: attnkit explain --checkpoint {job.out} 'a gem of a film'")
        return lines

    def load(self, checkpoint: str | Path) -> ClassifyRun:
        return load(checkpoint)

    def evaluate(self, run: ClassifyRun, options: base.Options) -> dict[str, Any]:
        if not options.data:
            return evaluate(run, held_out(run))
        _, examples = tc.read_examples(options.data, run.task.documents, run.task.classes)
        return evaluate(run, examples)

    def format_scores(self, scores: dict[str, Any], options: base.Options) -> str:
        what = f"every row of {options.data}" if options.data else "the test split"
        return f"{what}:\n" + super().format_scores(scores, options)

    def predict(self, run: ClassifyRun, options: base.Options) -> list[base.Prediction]:
        if not options.texts:
            raise SettingsError("give the text(s) to classify")
        probs = predict(run, list(options.texts))
        classes = run.task.classes
        out = []
        for text, p in zip(options.texts, probs, strict=True):
            label = classes[int(p.argmax())]
            record = {
                "input": text,
                "output": label,
                "probabilities": dict(zip(classes, map(float, p), strict=True)),
            }
            out.append(base.Prediction(record, f"{text}\t{label}\t{float(p.max()):.3f}"))
        return out

    def explain(self, run: ClassifyRun, options: base.Options) -> list[str]:
        import json
        import sys

        from ..viz.highlight import explanation_html, render_explanation

        html = Path(options.html) if options.html else None
        if html is not None and html.is_dir():
            raise SettingsError(f"--html {html} is a directory; name an HTML file")
        if len(options.texts) != 1:
            raise SettingsError("give one text to explain ('-': read it from standard input)")
        text = sys.stdin.read() if options.texts[0] == "-" else options.texts[0]
        data = explain(run, text, steps=options.steps or IG_STEPS).to_json()
        if options.json:
            lines = [json.dumps({"input": text, **data}, ensure_ascii=False)]
        else:
            color = options.color == "always" or (options.color == "auto" and sys.stdout.isatty())
            lines = [render_explanation(data, color=color)]
        if html is not None:
            html.parent.mkdir(parents=True, exist_ok=True)
            title = f"attnkit explain: {options.checkpoint}"
            html.write_text(explanation_html(data, title), encoding="utf-8")
            print(f"HTML in {html}", file=sys.stderr)
        return lines

    def serve_card(self, run: ClassifyRun) -> dict[str, Any]:
        return {**super().serve_card(run), "kind": "classifier", "transformer": False}

    def serve_predict(self, run: ClassifyRun, text: str, beam: int = 1) -> dict[str, Any]:
        if not run.task.documents and "\n" in text:
            text = " ".join(text.split())
        with torch.enable_grad():
            explanation = explain(run, text)
        return {"kind": "classifier", "input": text, **explanation.to_json()}
