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
from .onnx import IR_1_14, META, ExportError, check_graph, export_graph, set_ir_version, write_meta

__all__ = ["ORT_1_14", "PriceGraph", "export", "mq5", "mqh"]

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
        self.heads = model.cfg.num_heads if self.attention else 0

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
    meta = write_meta(
        out,
        recipe,
        {"model": path},
        [checked],
        kind="prices",
        target=target or "onnx",
        ir_version=checked["ir_version"],
        inputs={
            "features": {
                "shape": [batch if target == "mt5" else "batch", window, features],
                "dtype": "float32",
                "order": list(pr.FEATURES),
                "about": "attnkit.tasks.prices.features of the window's bars, oldest first; "
                "not standardised (the graph subtracts mean and divides by scale)",
            }
        },
        outputs={
            "prediction": {
                "dtype": "float32",
                "classes": list(pr.CLASSES[task["kind"]]) or None,
                "about": "class probabilities" if pr.CLASSES[task["kind"]] else "log return",
            },
            **(
                {
                    "weights": {
                        "shape": [batch if target == "mt5" else "batch", graph.heads, window],
                        "dtype": "float32",
                        "about": "(batch, heads, window): the last "
                        "layer's weights of the last bar over the window",
                    }
                }
                if graph.attention
                else {}
            ),
        },
        target_name=task["kind"],
        window=window,
        mean=[float(x) for x in task["mean"]],
        scale=[float(x) for x in task["scale"]],
    )
    written = [path, out / META]
    if target == "mt5":
        (out / "model.mqh").write_text(mqh(meta))
        (out / "model.mq5").write_text(mq5(meta))
        written += [out / "model.mqh", out / "model.mq5"]
    return written


def mqh(meta: dict[str, Any]) -> str:
    """The MQL5 include of an exported price model: its input shape, feature order, scaler and
    output classes as constants, for an Expert Advisor that fills the input the graph reads."""
    order = meta["inputs"]["features"]["order"]
    classes = meta["outputs"]["prediction"]["classes"] or []

    def doubles(values) -> str:
        return ", ".join(repr(float(v)) for v in values)

    shapes = meta["outputs"]
    heads = shapes.get("weights", {}).get("shape", [1, 0, 0])[1]
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
    lines.append(f"#define ATTNKIT_HEADS {heads}  // weights output (1, heads, window); 0: none")
    named = classes or ["log return"]  # a return model's one output
    quoted = ", ".join(json.dumps(c) for c in named)
    lines.append(f"string ATTNKIT_CLASS_NAMES[{len(named)}] = {{{quoted}}};")
    return "\n".join(lines) + "\n"


# The Expert Advisor's feature code: each line mirrors one of attnkit.tasks.prices.features,
# and the indicators' recursions (attnkit.tasks.prices.rsi, cci, atr, macd) are computed over
# the InpHistory bars before the bar, as pandas computes them over the whole series: an
# exponential average started InpHistory bars back differs from one started at the series'
# beginning by (1 - alpha)^InpHistory, below 1e-12 for 400 bars and RSI's alpha of 1/14.
_MQ5 = r"""//+------------------------------------------------------------------+
//| model.mq5: an example Expert Advisor for an attnkit price model,   |
//| generated by `attnkit export --target mt5` next to model.onnx and  |
//| model.mqh. It computes attnkit's features of the last closed bars, |
//| runs the model once per new bar and prints its prediction. Put the |
//| three files in MQL5/Experts/attnkit/ and compile this one.         |
//+------------------------------------------------------------------+
#include "model.mqh"
#resource "model.onnx" as uchar ExtModel[]

input int InpHistory = 400;  // bars the indicators run over (>= 2 * ATTNKIT_WINDOW + 64)

long     g_model = INVALID_HANDLE;
datetime g_last = 0;

int OnInit()
  {
   if(InpHistory < ATTNKIT_WINDOW + 64)
     {
      Print("InpHistory must be at least ", ATTNKIT_WINDOW + 64);
      return(INIT_PARAMETERS_INCORRECT);
     }
   g_model = OnnxCreateFromBuffer(ExtModel, ONNX_DEFAULT);
   if(g_model == INVALID_HANDLE)
     {
      Print("OnnxCreateFromBuffer failed: ", GetLastError());
      return(INIT_FAILED);
     }
   // every dimension fixed: input (1, window, features); outputs as model.json says
   const ulong input_shape[] = {1, ATTNKIT_WINDOW, ATTNKIT_FEATURES};
   if(!OnnxSetInputShape(g_model, 0, input_shape))
     {
      Print("OnnxSetInputShape failed: ", GetLastError());
      return(INIT_FAILED);
     }
   bool shaped;
   if(ATTNKIT_CLASSES > 0)                       // class probabilities (1, classes)
     {
      const ulong prediction_shape[] = {1, ATTNKIT_CLASSES};
      shaped = OnnxSetOutputShape(g_model, 0, prediction_shape);
     }
   else                                          // a return model: (1,)
     {
      const ulong return_shape[] = {1};
      shaped = OnnxSetOutputShape(g_model, 0, return_shape);
     }
   if(!shaped)
     {
      Print("OnnxSetOutputShape failed: ", GetLastError());
      return(INIT_FAILED);
     }
   if(ATTNKIT_HEADS > 0)
     {
      const ulong weights_shape[] = {1, ATTNKIT_HEADS, ATTNKIT_WINDOW};
      if(!OnnxSetOutputShape(g_model, 1, weights_shape))
        {
         Print("OnnxSetOutputShape (weights) failed: ", GetLastError());
         return(INIT_FAILED);
        }
     }
   return(INIT_SUCCEEDED);
  }

void OnDeinit(const int reason)
  {
   if(g_model != INVALID_HANDLE)
      OnnxRelease(g_model);
  }

// Wilder's smoothing / an exponential average of alpha a, as pandas' ewm(adjust=False):
// y_0 = x_0, y_t = (1 - a) y_{t-1} + a x_t
double Ema(const double previous, const double x, const double a, const bool first)
  {
   return(first ? x : (1.0 - a) * previous + a * x);
  }

// The features of rates[n - window .. n - 1] (oldest first) into x (window, features), each
// as attnkit.tasks.prices.features computes it; false when the history is too short.
bool Features(const MqlRates &rates[], const int n, matrixf &x)
  {
   if(n < ATTNKIT_WINDOW + 64)
      return(false);
   double gain = 0, loss = 0, atr = 0, ema12 = 0, ema26 = 0, signal = 0;
   double tr_sum = 0;
   for(int t = 0; t < n; t++)
     {
      const double o = rates[t].open, h = rates[t].high, l = rates[t].low, c = rates[t].close;
      const double prev = t > 0 ? rates[t - 1].close : c;
      // RSI (14, Wilder): the averages start at the first change
      if(t >= 1)
        {
         const double d = c - prev;
         gain = Ema(gain, MathMax(d, 0.0), 1.0 / 14, t == 1);
         loss = Ema(loss, MathMax(-d, 0.0), 1.0 / 14, t == 1);
        }
      // ATR (14): true range max(h, prev close) - min(l, prev close), h - l at the first bar;
      // the mean of the first 14, then atr_t = atr_{t-1} + (TR_t - atr_{t-1}) / 14
      const double tr = t > 0 ? MathMax(h, prev) - MathMin(l, prev) : h - l;
      if(t < 14)
        {
         tr_sum += tr;
         atr = tr_sum / (t + 1);
        }
      else
         atr = atr + (tr - atr) / 14;
      // MACD (12, 26, 9) of the close: spans s give alpha 2 / (s + 1); the signal line starts
      // where the MACD line is first defined (bar 25)
      ema12 = Ema(ema12, c, 2.0 / 13, t == 0);
      ema26 = Ema(ema26, c, 2.0 / 27, t == 0);
      const double line = ema12 - ema26;
      if(t >= 25)
         signal = Ema(signal, line, 2.0 / 10, t == 25);
      const int row = t - (n - ATTNKIT_WINDOW);
      if(row < 0)
         continue;
      // CCI (20): typical price against its 20-bar mean and mean absolute deviation
      double mean = 0;
      for(int k = t - 19; k <= t; k++)
         mean += (rates[k].high + rates[k].low + rates[k].close) / 3;
      mean /= 20;
      double dev = 0;
      for(int k = t - 19; k <= t; k++)
         dev += MathAbs((rates[k].high + rates[k].low + rates[k].close) / 3 - mean);
      dev /= 20;
      const double typical = (h + l + c) / 3;
      MqlDateTime when;
      TimeToStruct(rates[t].time, when);
      const double hour = when.hour + when.min / 60.0;
      const int weekday = (when.day_of_week + 6) % 7;  // Monday 0 .. Sunday 6, as pandas
      const double rsi = loss == 0 ? 100.0 : 100.0 - 100.0 / (1.0 + gain / loss);
      double f[ATTNKIT_FEATURES];
      f[0] = (c - o) / o;                               // body
      f[1] = (h - MathMax(o, c)) / o;                   // upper_shadow
      f[2] = (MathMin(o, c) - l) / o;                   // lower_shadow
      f[3] = (h - l) / o;                               // range
      f[4] = MathLog(c / prev);                         // log_return
      f[5] = MathLog(1.0 + MathMax((double)rates[t].tick_volume, 0.0)); // log_volume
      f[6] = rsi / 100;                                 // rsi
      f[7] = (typical - mean) / (0.015 * dev) / 100;   // cci
      f[8] = atr / c;                                   // atr
      f[9] = line / c;                                  // macd
      f[10] = signal / c;                               // macd_signal
      f[11] = (line - signal) / c;                      // macd_hist
      f[12] = MathSin(2 * M_PI * hour / 24);            // hour_sin
      f[13] = MathCos(2 * M_PI * hour / 24);            // hour_cos
      f[14] = MathSin(2 * M_PI * weekday / 7);          // weekday_sin
      f[15] = MathCos(2 * M_PI * weekday / 7);          // weekday_cos
      for(int j = 0; j < ATTNKIT_FEATURES; j++)
        {
         if(!MathIsValidNumber(f[j]))
            return(false);                              // a price that does not move
         x[row][j] = (float)f[j];
        }
     }
   return(true);
  }

void OnTick()
  {
   const datetime closed = iTime(_Symbol, _Period, 1);  // the last closed bar
   if(closed == 0 || closed == g_last)
      return;
   g_last = closed;
   MqlRates rates[];
   ArraySetAsSeries(rates, false);                      // oldest first
   const int n = CopyRates(_Symbol, _Period, 1, InpHistory, rates);
   matrixf x(ATTNKIT_WINDOW, ATTNKIT_FEATURES);
   if(n < InpHistory || !Features(rates, n, x))
      return;
   vectorf prediction(MathMax(ATTNKIT_CLASSES, 1));
   bool ok;
   if(ATTNKIT_HEADS > 0)
     {
      matrixf weights(ATTNKIT_HEADS, ATTNKIT_WINDOW);
      ok = OnnxRun(g_model, ONNX_NO_CONVERSION, x, prediction, weights);
     }
   else
      ok = OnnxRun(g_model, ONNX_NO_CONVERSION, x, prediction);
   if(!ok)
     {
      Print("OnnxRun failed: ", GetLastError());
      return;
     }
   if(ATTNKIT_CLASSES == 0)
     {
      PrintFormat("%s: predicted log return %.6g", TimeToString(closed), prediction[0]);
      return;
     }
   const int best = (int)prediction.ArgMax();
   PrintFormat("%s: %s (p = %.3f)", TimeToString(closed), ATTNKIT_CLASS_NAMES[best],
               prediction[best]);
  }
"""


def mq5(meta: dict[str, Any]) -> str:
    """The example Expert Advisor of an exported price model (see ``_MQ5``): it loads
    ``model.onnx`` from a resource with ``OnnxCreateFromBuffer``, fixes the shapes, computes
    the features of the last closed bars and calls ``OnnxRun`` once per new bar."""
    order = meta["inputs"]["features"]["order"]
    if list(order) != list(pr.FEATURES) or len(order) != 16:
        raise ExportError("the Expert Advisor computes attnkit's 16 features; these differ")
    return _MQ5
