"""An image classifier as an ONNX graph: images in, class probabilities and every attention
block's maps out.

Inputs and outputs of ``model.onnx`` (also in ``model.json``):

- ``images`` float32 (batch, channels, height, width), pixels in [0, 1] as the training data;
- ``probabilities`` float32 (batch, classes), classes named in ``model.json``;
- per CNN stage ``k`` with an attention block: ``channels_k`` float32 (batch, C_k), the channel
  weights (squeeze-and-excitation, CBAM), and ``spatial_k`` float32 (batch, h_k, w_k), the
  spatial map (CBAM).

The batch and the image size stay free (the network is convolutional and pools globally).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .onnx import META, ExportError, check_graph, export_graph, write_meta

__all__ = ["ExportError", "ImageGraph", "export"]


class ImageGraph(nn.Module):
    """images -> (probabilities, the blocks' maps in stage order)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        with torch.no_grad():  # which stages give which maps, from one probe
            c = model.cfg.in_channels
            _, stages = model(torch.zeros(1, c, 8, 8), return_weights=True)
        self.names = [
            f"{kind}_{k}"
            for k, (channel, spatial) in enumerate(stages)
            for kind, value in (("channels", channel), ("spatial", spatial))
            if value is not None
        ]

    def forward(self, images: torch.Tensor):
        logits, stages = self.model(images, return_weights=True)
        outs = [torch.softmax(logits, -1)]
        for channel, spatial in stages:
            if channel is not None:
                outs.append(channel.flatten(1))  # (B, C)
            if spatial is not None:
                outs.append(spatial[:, 0])  # (B, h, w)
        return tuple(outs)


def export(
    run: Any, out: Path, recipe: str = "vision", example_size: tuple[int, int] = (8, 8)
) -> list[Path]:
    """Write ``out/model.onnx`` and ``out/model.json``; the paths written."""
    graph = ImageGraph(run.model)
    c = run.model.cfg.in_channels
    names = ["probabilities", *graph.names]
    path = export_graph(
        graph,
        [torch.rand(2, c, *example_size)],
        out / "model.onnx",
        input_names=["images"],
        output_names=names,
        dynamic={"images": {0: "batch", 2: "height", 3: "width"}},
    )
    write_meta(
        out,
        recipe,
        {"model": path},
        [check_graph(path)],
        kind="image-classifier",
        inputs={
            "images": {
                "shape": ["batch", c, "height", "width"],
                "dtype": "float32",
                "about": "pixels in [0, 1], as the training images",
            }
        },
        outputs={
            "probabilities": {"dtype": "float32", "classes": run.config["task"]["classes"]},
            **{n: {"dtype": "float32"} for n in graph.names},
        },
    )
    return [path, out / META]
