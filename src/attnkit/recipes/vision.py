"""Image classification: the registered CNN with no attention block, squeeze-and-excitation or
CBAM, trained by the generic trainer on labelled images (scikit-learn's digits), the best
epoch by validation accuracy kept; its channel weights and spatial maps on request.

    >>> from attnkit.recipes import vision
    >>> vision.BLOCKS
    ('none', 'se', 'cbam')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models import build, entry
from ..models.vision import BLOCKS
from ..tasks import images as ti
from ..train import CheckpointError, fit, load_model
from ..train.loop import SettingsError
from . import base
from .base import merge_settings, saved_settings

__all__ = ["BLOCKS", "VisionRun", "evaluate", "load", "maps", "train"]

DEFAULTS = {"epochs": 30, "batch_size": 64, "lr": 3e-3, "patience": 8}
DATA_FIELDS = frozenset({"in_channels", "classes", "block"})
DATASETS = {"digits": ti.digits, "fashion-mnist": ti.fashion_mnist}


@dataclass
class VisionRun:
    model: nn.Module
    config: dict[str, Any]
    served_test: ti.Images | None = None  # the test split, read on first use by show / serve


def dataset(name: str) -> ti.ImageSet:
    if name not in DATASETS:
        raise SettingsError(f"unknown image data {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]()


def train(
    data: str = "digits",
    *,
    out: str | Path,
    block: str | None = None,
    **settings: Any,
) -> VisionRun:
    """Train the image classifier with ``block`` (default "none") on ``data``; keep the best
    epoch in ``out``. ``settings`` are fields of ImageClassifierConfig or TrainConfig, or the
    job's options (:class:`~attnkit.recipes.base.Job`: ``resume``, ``threads``, ``log``, ...)."""
    job, settings = base.Job.take(out, settings)
    resume, saved = base.begin(job, "vision", "image classifier")
    if saved is not None:
        if block is not None and block != saved["config"]["block"]:
            raise SettingsError(f"{out} holds a {saved['config']['block']} run, not {block}")
        block, data = saved["config"]["block"], saved["task"]["data"]
        settings = saved_settings(saved, settings, DATA_FIELDS)
    block = block or "none"
    if block not in BLOCKS:
        raise SettingsError(f"unknown block {block!r}; expected one of {', '.join(BLOCKS)}")
    own = frozenset(f.name for f in fields(entry("image-classifier").config_cls)) - DATA_FIELDS
    model_kw, tcfg = merge_settings(
        {**settings, "progress": job.progress}, block, own, DATA_FIELDS, DEFAULTS
    )
    images = dataset(data)
    torch.manual_seed(tcfg.seed)
    net = build(
        "image-classifier",
        {
            "in_channels": images.train.x.shape[1],
            "classes": len(images.classes),
            "block": block,
            **model_kw,
        },
    )
    params = sum(p.numel() for p in net.parameters())
    job.log(
        f"{data}: {len(images.train):,} training images, {len(images.valid):,} validation; "
        f"block {block}, {params:,} parameters"
    )
    meta = {"task": {"name": "vision", "data": data, "classes": list(images.classes)}}
    state = fit(
        net, ti.ImageTask(), images.train, images.valid, tcfg, out, meta, resume=resume, log=job.log
    )
    return base.finish(load, out, state)


def load(checkpoint: str | Path) -> VisionRun:
    """The image classifier saved in ``checkpoint``; CheckpointError if it is not one."""
    model, config = load_model(checkpoint)
    task = config.get("task") or {}
    if task.get("name") != "vision" or len(task.get("classes", [])) != model.cfg.classes:
        raise CheckpointError(f"{checkpoint} holds no image classifier")
    return VisionRun(model, config)


def evaluate(run: VisionRun, split: str = "test") -> dict[str, float]:
    """Accuracy of the run on its data's ``split``."""
    images = dataset(run.config["task"]["data"])
    held = getattr(images, split)
    return {**ti.ImageTask().evaluate(run.model, held), "n": len(held)}


def maps(run: VisionRun, x: Tensor) -> tuple[Tensor, list]:
    """(class probabilities (B, classes), each stage's (channel weights, spatial map))."""
    run.model.eval()
    with torch.no_grad():
        logits, weights = run.model(x, return_weights=True)
    return torch.softmax(logits, -1), weights


# -- the recipe protocol (recipes.base): `attnkit train vision`, eval, show ---------------


@dataclass
class VisionSettings(base.TrainSettings):
    """``attnkit train vision``: an image classifier with attention blocks."""

    data: str | None = base.setting("the images", choices=DATASETS)
    block: str | None = base.setting(
        "the attention block of every CNN stage: none, se (squeeze-and-excitation) or cbam",
        choices=BLOCKS,
    )


class VisionRecipe(base.Recipe):
    name = "vision"
    help = "an image classifier (scikit-learn's digits, or Fashion-MNIST)"
    what = "an image classifier"
    settings = VisionSettings
    score_width = 20
    options = {
        "eval": frozenset(),
        "show": frozenset({"texts", "out"}),
        "export": frozenset({"out"}),
    }

    def defaults(self, model: str | None = None) -> dict[str, Any]:
        cfg = entry("image-classifier").config_cls
        values = base.resolved(cfg, {}, base.TrainConfig(**DEFAULTS))
        return {**values, "data": "digits", "block": "none", "minutes": None}

    def train(self, settings: VisionSettings, job: base.Job) -> VisionRun:
        kw = settings.given()
        return train(kw.pop("data", "digits"), **job.arguments(), **kw)

    def trained(self, run: VisionRun, job: base.Job) -> list[str]:
        test = evaluate(run)
        return [
            f"validation accuracy {run.config['metrics']['accuracy']:.4f} (epoch "
            f"{run.config['epoch']}); test accuracy {test['accuracy']:.4f} ({test['n']} "
            f"images); checkpoint in {job.out}",
            f"try: attnkit show --checkpoint {job.out} 0",
        ]

    def load(self, checkpoint: str | Path) -> VisionRun:
        return load(checkpoint)

    def evaluate(self, run: VisionRun, options: base.Options) -> dict[str, Any]:
        return evaluate(run)

    def _test_image(self, run: VisionRun, text: str):
        """(index, image (C, H, W), probabilities (classes,), the stages' maps, label, truth)
        of the test image whose index is ``text``; the test split is read once per run."""
        if run.served_test is None:
            run.served_test = dataset(run.config["task"]["data"]).test
        test = run.served_test
        i = ti.test_index(text, len(test), "an image classifier")
        probs, stages = maps(run, test.x[i : i + 1])
        classes = run.config["task"]["classes"]
        one = [(None if c is None else c[0], None if s is None else s[0]) for c, s in stages]
        label, truth = classes[int(probs[0].argmax())], classes[int(test.y[i])]
        return i, test.x[i], probs[0], one, label, truth

    def show(self, run: VisionRun, options: base.Options, png: Path) -> list[str]:
        """``text`` is the index of a test image: its prediction, and its maps as a PNG."""
        from ..viz.images import save_image_maps

        text = options.texts[0] if options.texts else ""
        i, image, probs, stages, label, truth = self._test_image(run, text)
        title = f"test image {i}: predicted {label} ({float(probs.max()):.2f}), truth {truth}"
        path = save_image_maps(image, stages, png, title)
        return [title, f"maps written to {path}"]

    def serve_card(self, run: VisionRun) -> dict[str, Any]:
        return {**super().serve_card(run), "kind": "image-classifier", "transformer": False}

    def serve_predict(self, run: VisionRun, text: str, beam: int = 1) -> dict[str, Any]:
        """The test image ``text`` (an index): its pixels (channel 0), the label, the truth, the
        class probabilities and, per stage with a block, its spatial map (h, w) and channel
        weights (C,), or None where the block has none."""
        i, image, probs, stages, label, truth = self._test_image(run, text)
        classes = run.config["task"]["classes"]
        return {
            "kind": "image-classifier",
            "input": str(i),
            "output": label,
            "truth": truth,
            "probabilities": dict(zip(classes, base.rounded(probs), strict=True)),
            "image": base.rounded(image[0], 4),
            "stages": [
                {
                    "spatial": None if s is None else base.rounded(s[0]),
                    "channels": None if c is None else base.rounded(c.flatten()),
                }
                for c, s in stages
            ],
        }

    def export(self, run: VisionRun, out: Path, **options: Any) -> list[Path]:
        """``out/model.onnx`` and ``out/model.json`` (:mod:`attnkit.export.images`)."""
        from ..export import images as ex

        if options.get("target"):
            raise ex.ExportError(f"an image classifier has no target {options['target']!r}")
        return ex.export(run, Path(out), recipe=self.name)
