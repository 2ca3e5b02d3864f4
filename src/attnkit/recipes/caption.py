"""The captioner (Show, Attend and Tell on composed digit images): train, load, evaluate and
caption, with the attention of every output token over the image.

Training images put 2 to 4 digits of the digits' training split side by side (``layout``
"row") or in a 2 x 2 grid ("grid"); validation and test images take the digits' own
validation and test images and strings of their own hash splits, so the test strings were
never trained on (:mod:`attnkit.tasks.captions`). The best epoch by validation exact match is
kept.

    >>> from attnkit.recipes import caption
    >>> caption.LAYOUTS
    ('row', 'grid')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models import build, entry
from ..models.decoding import beam_search, greedy
from ..models.vision import BLOCKS
from ..tasks import captions as tcap
from ..tasks.images import digits
from ..train import CheckpointError, fit, load_model
from ..train.loop import SettingsError
from . import base
from .base import merge_settings, saved_settings

__all__ = ["LAYOUTS", "CaptionRun", "caption", "evaluate", "load", "test_data", "train"]

LAYOUTS = tuple(tcap.LAYOUTS)
SIZES = {"train": 20_000, "valid": 1_000, "test": 2_000}  # images of each split
DEFAULTS = {"epochs": 20, "batch_size": 64, "lr": 3e-3, "patience": 5}
DATA_FIELDS = frozenset(
    {"vocab_size", "in_channels", "max_output_len", "pad_id", "bos_id", "eos_id"}
)


@dataclass
class CaptionRun(base.Run):
    task: tcap.CaptionTask
    served_test: tcap.CaptionData | None = None  # the explorer's test images, made on first use


def _split(task: tcap.CaptionTask, split: str, n: int | None = None, seed: int = 0):
    """The captioned images of ``split``, drawn from the digits' split of the same name."""
    source = getattr(digits(), split)
    return task.data(
        source, n or SIZES[split], split, seed=seed + {"train": 0, "valid": 1, "test": 2}[split]
    )


def train(
    layout: str | None = None,
    *,
    out: str | Path,
    n: int | None = None,
    block: str | None = None,
    **settings: Any,
) -> CaptionRun:
    """Train the captioner on ``n`` (default 20,000) composed images of ``layout`` (default
    "row"); keep the best epoch in ``out``. ``settings`` are fields of CaptionerConfig or
    TrainConfig (``doubly_stochastic`` turns the attention regulariser on), or the job's options
    (:class:`~attnkit.recipes.base.Job`: ``resume``, ``threads``, ``log``, ...)."""
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "caption", "captioner")
    if saved is not None:
        task = tcap.CaptionTask.from_config(saved["task"])
        if layout is not None and layout != task.layout:
            raise SettingsError(f"{out} holds a {task.layout} run, not {layout}")
        n = n or saved["task"].get("n")
        settings = saved_settings(saved, settings, DATA_FIELDS)
        block = saved["config"]["block"] if block is None else block
    else:
        layout = layout or "row"
        if layout not in LAYOUTS:
            raise SettingsError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        task = tcap.CaptionTask(layout)
    block = block or "none"
    if block not in BLOCKS:
        raise SettingsError(f"unknown block {block!r}; expected one of {', '.join(BLOCKS)}")
    own = frozenset(f.name for f in fields(entry("captioner").config_cls)) - DATA_FIELDS
    model_kw, tcfg = merge_settings(
        {**settings, "block": block, "progress": job.progress},
        "caption",
        own,
        DATA_FIELDS,
        DEFAULTS,
    )
    n = n or SIZES["train"]
    train_data, valid = _split(task, "train", n, tcfg.seed), _split(task, "valid")
    torch.manual_seed(tcfg.seed)
    net = build(
        "captioner",
        {
            "vocab_size": len(task.vocab),
            "in_channels": 1,
            "max_output_len": task.max_output_len,
            "pad_id": task.vocab.pad_id,
            "bos_id": task.vocab.bos_id,
            "eos_id": task.vocab.eos_id,
            **model_kw,
        },
    )
    params = sum(p.numel() for p in net.parameters())
    job.log(
        f"captions ({task.layout}): {len(train_data):,} training images, {len(valid):,} "
        f"validation; block {net.cfg.block}, {params:,} parameters"
    )
    meta = {"task": {**task.to_config(), "n": n}}
    state = fit(net, task, train_data, valid, tcfg, out, meta, resume=resume, log=job.log)
    return base.finish(load, out, state)


def load(checkpoint: str | Path) -> CaptionRun:
    """The captioner saved in ``checkpoint``; CheckpointError if it is not one."""
    model, config = load_model(checkpoint)
    task = config.get("task") or {}
    if task.get("name") != "caption":
        raise CheckpointError(f"{checkpoint} holds no captioner")
    return CaptionRun(model, tcap.CaptionTask.from_config(task), config)


def test_data(run: CaptionRun, n: int | None = None) -> tcap.CaptionData:
    """The run's test images: unseen digit images spelling strings never trained on."""
    return _split(run.task, "test", n)


def evaluate(run: CaptionRun, n: int | None = None) -> dict[str, float]:
    """Exact sequence accuracy, character accuracy and attention share in the digit's box on
    ``n`` (default 2,000) test images, with the share uniform attention would give."""
    data = test_data(run, n)
    boxes = [b for row in data.captions.boxes for b in row]
    h, w = data.captions.x.shape[-2:]
    chance = sum((b[1] - b[0]) * (b[3] - b[2]) for b in boxes) / (len(boxes) * h * w)
    return {**run.task.evaluate(run.model, data), "box_share_uniform": chance}


def caption(run: CaptionRun, images: Tensor, beam: int = 1) -> list[tuple[str, list[str], Tensor]]:
    """(string, the tokens written, end of sequence included where it was reached, their
    attention (T, H', W')) of each image (B, 1, H, W), by greedy decoding or beam search."""
    run.model.eval()
    if images.dim() == 3:
        images = images[None]
    with torch.no_grad():
        if beam == 1:
            out = greedy(run.model, images, None)
        else:
            out = beam_search(run.model, images, None, beam)
    vocab = run.task.vocab
    result = []
    for ids, weights in zip(out.ids, out.weights, strict=True):  # weights: padded to the longest
        tokens = [*(vocab.itos[i] for i in ids), vocab.itos[vocab.eos_id]][: len(weights)]
        result.append((vocab.decode(ids), tokens, weights[: len(tokens)]))
    return result


# -- the recipe protocol (recipes.base): `attnkit train caption`, eval, show, the explorer --


@dataclass
class CaptionSettings(base.TrainSettings):
    """``attnkit train caption``: Show, Attend and Tell on images of digit strings."""

    layout: str | None = base.setting(
        "digits side by side (row) or in a 2 x 2 grid", choices=LAYOUTS
    )
    n: int | None = base.setting("training images", kind=base.positive_int)
    block: str | None = base.setting("the attention block of every CNN stage", choices=BLOCKS)
    hidden_dim: int | None = base.setting("the decoder's state size", kind=base.positive_int)
    doubly_stochastic: float | None = base.setting(
        "weight of the regulariser that asks every image region to be attended about once over "
        "a caption (Xu et al. 2015, eq. 14; 0: off)",
        kind=base.positive_float,
        metavar="LAMBDA",
    )


class CaptionRecipe(base.Recipe):
    name = "caption"
    help = "a Show, Attend and Tell captioner that reads digit strings from images"
    what = "a captioner"
    settings = CaptionSettings
    score_width = 20
    options = {
        "eval": frozenset(),
        "show": frozenset({"texts", "out", "beam"}),
        "export": frozenset({"out"}),
    }

    def export(self, run: CaptionRun, out: Path, **options: Any) -> list[Path]:
        """``out/encoder.onnx`` (images of the task's size in, batch free), ``out/step.onnx``
        and ``out/model.json``; see :mod:`attnkit.export.sequences`. The step's weights are
        the (batch, rows, columns) grid of the images' cells."""
        from ..export import sequences

        images = test_data(run, 3).captions.x

        def inputs(b: int, s: int):
            return images[torch.arange(b) % len(images)], torch.ones(b, dtype=torch.long)

        return sequences.export(run, Path(out), self.name, inputs, src_free={0: "batch"})

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        cfg = entry("captioner").config_cls
        values = base.resolved(cfg, {}, base.TrainConfig(**DEFAULTS))
        return {**values, "layout": "row", "n": SIZES["train"], "block": "none", "minutes": None}

    def train(self, settings: CaptionSettings, job: base.Job) -> CaptionRun:
        kw = settings.given()
        return train(kw.pop("layout", None), **job.arguments(), **kw)

    def trained(self, run: CaptionRun, job: base.Job) -> list[str]:
        test = evaluate(run)
        return [
            f"validation exact match {run.config['metrics']['exact_match']:.4f} (epoch "
            f"{run.config['epoch']}); test: exact match {test['exact_match']:.4f}, attention "
            f"in the digit's box {test['box_share']:.3f} (uniform "
            f"{test['box_share_uniform']:.3f}) on {test['n']} images of unseen strings; "
            f"checkpoint in {job.out}",
            f"try: attnkit show --checkpoint {job.out} 0",
        ]

    def load(self, checkpoint: str | Path) -> CaptionRun:
        return load(checkpoint)

    def evaluate(self, run: CaptionRun, options: base.Options) -> dict[str, Any]:
        return evaluate(run)

    def _image(self, run: CaptionRun, text: str, test: tcap.CaptionData | None = None):
        from ..tasks.images import test_index

        test = test_data(run) if test is None else test
        return test, test_index(text, len(test), "a captioner")

    def show(self, run: CaptionRun, options: base.Options, png: Path) -> list[str]:
        """``text`` is the index of a test image: its caption, and one panel per output token
        with the attention drawn over the image."""
        from ..viz.images import save_caption_maps

        test, i = self._image(run, options.texts[0] if options.texts else "")
        ((text, tokens, weights),) = caption(run, test.captions.x[i], beam=options.beam)
        title = f"test image {i}: wrote {text!r}, truth {test.captions.strings[i]!r}"
        path = save_caption_maps(test.captions.x[i], weights, tokens, png, title)
        return [title, f"{len(tokens)} panels written to {path}"]

    def serve_card(self, run: CaptionRun) -> dict[str, Any]:
        return {**super().serve_card(run), "kind": "captioner", "transformer": False}

    def serve_predict(self, run: CaptionRun, text: str, beam: int = 1) -> dict[str, Any]:
        test, i = self._image(run, text, run.served_test)
        run.served_test = test
        image = test.captions.x[i]
        ((out, tokens, weights),) = caption(run, image, beam=beam)
        return {
            "kind": "captioner",
            "input": str(i),
            "output": out,
            "truth": test.captions.strings[i],
            "image": base.rounded(image[0], 4),
            "boxes": test.captions.boxes[i],
            "output_tokens": tokens,
            "weights": base.rounded(weights),
        }
