"""A price model as an ONNX graph: raw features in, the prediction and (for the attention
model) its weights out, the checkpoint's feature scaler folded into the graph.

Inputs and outputs of ``model.onnx`` (also in ``model.json``):

- ``features`` float32 (batch, window, F): the F features of :data:`attnkit.tasks.prices.FEATURES`
  of the ``window`` bars ending at the bar to predict, oldest first, as
  :func:`attnkit.tasks.prices.features` computes them (not standardised: the graph does it);
- ``prediction`` float32: (batch, classes) probabilities for the fractal and direction
  targets (classes in ``model.json``), or (batch,) the next bar's log return;
- ``weights`` float32 (batch, heads, window), the attention model only: the last layer's
  weights of the window's last bar over every bar of the window (each row sums to 1).

With ``target="mt5"`` the batch is fixed at 1 (MetaTrader 5 needs every dimension fixed), the
opset is at most 18 and every operator is one that onnxruntime 1.14 (MetaTrader's) runs;
``model.mqh`` holds the shapes, the feature order and the scaler as MQL5 constants.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import SeriesAttention
from ..tasks import prices as pr
from .onnx import FORMAT, IR_1_14, ExportError, check_graph, export_graph, set_ir_version

__all__ = ["ORT_1_14", "PriceGraph", "export", "mqh"]

# operators of the default ONNX domain that onnxruntime 1.14's CPU provider implements and
# that these graphs may use (a subset of its list: what the window models need)
ORT_1_14 = frozenset(
    (
        "Abs",
        "Add",
        "And",
        "ArgMax",
        "AveragePool",
        "Cast",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "Div",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Gather",
        "GatherElements",
        "Gemm",
        "Greater",
        "GreaterOrEqual",
        "Identity",
        "LSTM",
        "LayerNormalization",
        "Less",
        "LessOrEqual",
        "MatMul",
        "Max",
        "Mean",
        "Min",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Pad",
        "Pow",
        "Range",
        "ReduceMax",
        "ReduceMean",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Tanh",
        "Tile",
        "Transpose",
        "Trilu",
        "Unsqueeze",
        "Where",
    )
)


class PriceGraph(nn.Module):
    """The model of a price run with its scaler: raw features (B, window, F) -> prediction
    (and weights). ``mean`` and ``scale`` are the checkpoint's, as float32 constants."""

    def __init__(self, model: nn.Module, task: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.kind = model.eval(), task["kind"]
        self.register_buffer("mean", torch.tensor(task["mean"], dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(task["scale"], dtype=torch.float32))
        self.return_scale = float(task["return_scale"])
        self.attention = isinstance(model, SeriesAttention)

    def forward(self, features: torch.Tensor):
        x = (features - self.mean) / self.scale  # (B, N, F), as the trainer saw them
        if self.attention:
            scores, layers = self.model(x, return_weights=True)
            weights = layers[-1][:, :, -1, :]  # (B, H, N): the last bar's row
        else:
            scores, weights = self.model(x), None
        if self.kind == "return":
            prediction = scores[:, 0] * self.return_scale
        else:
            prediction = torch.softmax(scores, -1)
        return prediction if weights is None else (prediction, weights)


def export(run: Any, out: Path, target: str | None = None, recipe: str = "prices") -> list[Path]:
    """Write ``out/model.onnx`` and ``out/model.json`` (and ``out/model.mqh`` for
    ``target="mt5"``); the paths written. ExportError for a target it does not know or a graph
    that fails its checks."""
    if target not in (None, "mt5"):
        raise ExportError(f"unknown target {target!r} for a price model; expected mt5")
    task, window = run.task, run.task["window"]
    graph = PriceGraph(run.model, task)
    features = len(pr.FEATURES)
    outputs = ["prediction", "weights"] if graph.attention else ["prediction"]
    batch = 1 if target == "mt5" else 2
    example = torch.randn(batch, window, features)
    path = export_graph(
        graph,
        [example],
        out / "model.onnx",
        input_names=["features"],
        output_names=outputs,
        dynamic=None if target == "mt5" else {"features": {0: "batch"}},
    )
    if target == "mt5":
        set_ir_version(path, IR_1_14)  # onnxruntime 1.14 refuses the IR version onnx writes
    checked = check_graph(
        path,
        allowed=ORT_1_14 if target == "mt5" else None,
        max_ir=IR_1_14 if target == "mt5" else None,
    )
    meta = {
        "format": FORMAT,
        "recipe": recipe,
        "kind": "prices",
        "target": target or "onnx",
        "opset": checked["opset"],
        "ir_version": checked["ir_version"],
        "inputs": {
            "features": {
                "shape": [batch if target == "mt5" else "batch", window, features],
                "dtype": "float32",
                "order": list(pr.FEATURES),
                "about": "attnkit.tasks.prices.features of the window's bars, oldest first; "
                "not standardised (the graph subtracts mean and divides by scale)",
            }
        },
        "outputs": {
            "prediction": {
                "dtype": "float32",
                "classes": list(pr.CLASSES[task["kind"]]) or None,
                "about": "class probabilities" if pr.CLASSES[task["kind"]] else "log return",
            },
            **(
                {
                    "weights": {
                        "dtype": "float32",
                        "about": "(batch, heads, window): the last "
                        "layer's weights of the last bar over the window",
                    }
                }
                if graph.attention
                else {}
            ),
        },
        "target_name": task["kind"],
        "window": window,
        "mean": [float(x) for x in task["mean"]],
        "scale": [float(x) for x in task["scale"]],
        "operators": checked["operators"],
    }
    written = [path, out / "model.json"]
    (out / "model.json").write_text(json.dumps(meta, indent=1))
    if target == "mt5":
        (out / "model.mqh").write_text(mqh(meta))
        written.append(out / "model.mqh")
    return written


def mqh(meta: dict[str, Any]) -> str:
    """The MQL5 include of an exported price model: its input shape, feature order, scaler and
    output classes as constants, for an Expert Advisor that fills the input the graph reads."""
    order = meta["inputs"]["features"]["order"]
    classes = meta["outputs"]["prediction"]["classes"] or []

    def doubles(values) -> str:
        return ", ".join(repr(float(v)) for v in values)

    lines = [
        "// attnkit price model: generated by `attnkit export --target mt5`; do not edit.",
        f"// target: {meta['target_name']}; opset {meta['opset']}; "
        "input float[1][window][features]",
        f"#define ATTNKIT_WINDOW {meta['window']}",
        f"#define ATTNKIT_FEATURES {len(order)}",
        f"#define ATTNKIT_CLASSES {len(classes)}",
        "// the features, in the order of the input's last dimension (attnkit.tasks.prices):",
        *(f"//   {i}: {name}" for i, name in enumerate(order)),
        f"string ATTNKIT_FEATURE_NAMES[{len(order)}] = {{{', '.join(map(json.dumps, order))}}};",
        "// the graph standardises (x - mean) / scale itself; these are for reference",
        f"double ATTNKIT_MEAN[{len(order)}] = {{{doubles(meta['mean'])}}};",
        f"double ATTNKIT_SCALE[{len(order)}] = {{{doubles(meta['scale'])}}};",
    ]
    if classes:
        quoted = ", ".join(json.dumps(c) for c in classes)
        lines.append(f"string ATTNKIT_CLASS_NAMES[{len(classes)}] = {{{quoted}}};")
    return "\n".join(lines) + "\n"
