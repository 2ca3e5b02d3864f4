"""ONNX graphs of attnkit models with torch's exporter, checked and compared with PyTorch.

``export_graph`` uses the exporter torch recommends (``torch.onnx.export(..., dynamo=True)``,
through ``torch.export``); every graph is float32 and exported in eval mode, and
``check_graph`` refuses one that still holds a training-only node (Dropout) or an operator
outside an allowlist. ``parity`` runs the graph in onnxruntime on inputs of its own and compares
every output with the module's.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ExportError",
    "check_graph",
    "export_graph",
    "exporter_for",
    "operators",
    "parity",
    "read_meta",
    "run_graph",
    "session",
    "set_ir_version",
    "write_meta",
]

FORMAT = "attnkit-onnx-1"  # model.json's "format": what an exported directory holds
META = "model.json"  # beside the graphs: their inputs and outputs, the recipe, the task
TRAINING_ONLY = frozenset({"Dropout"})  # nodes an inference graph must not hold
OPSET = 18  # the highest MetaTrader 5's onnxruntime (1.14) reads
IR_1_14 = 8  # the highest ONNX IR version onnxruntime 1.14 loads (1.15: 9; onnx 1.16 writes 10)


class ExportError(ValueError):
    """A model that cannot be exported, or a graph that fails its checks, with the reason."""


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - the [export] extra
        raise ExportError(
            'exporting needs the export extra: pip install "attnkit[export]"'
        ) from None
    return onnx


def export_graph(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    path: str | Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
    opset: int = OPSET,
    exporter: str = "dynamo",
) -> Path:
    """Export ``module`` (in eval mode) called on ``example`` to the ONNX file ``path``.
    ``dynamic`` names, per input (and output), the dimensions left free (``{"x": {0:
    "batch"}}``); every other dimension is fixed at the example's size. Returns the path.

    ``exporter="torchscript"`` uses torch's older TorchScript-based exporter instead, for what
    the dynamo exporter cannot keep dynamic: ``nn.GRU`` / ``nn.LSTM`` over a free number of
    steps, which ``torch.export`` unrolls at the example's length (pytorch#126339) and the
    older exporter writes as one ONNX ``GRU`` / ``LSTM`` node."""
    _onnx()
    if exporter == "torchscript":
        return _export_torchscript(
            module, example, Path(path), input_names, output_names, dynamic or {}, opset
        )
    if exporter != "dynamo":
        raise ValueError(f"exporter must be 'dynamo' or 'torchscript', got {exporter!r}")
    from torch.export import Dim

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    dims: dict[str, Any] = {}
    shapes = None
    if dynamic:
        per_input = [  # the outputs' free dimensions follow from the inputs'
            {axis: dims.setdefault(label, Dim(label, min=1)) for axis, label in free.items()}
            or None
            for free in (dynamic.get(name, {}) for name in input_names)
        ]
        # positional, in the forward's structure: the inputs a forward(a, b, *state) takes in
        # its *state come as one tuple
        params = inspect.signature(module.forward).parameters.values()
        kinds = [p.kind for p in params]
        if inspect.Parameter.VAR_POSITIONAL in kinds:
            fixed = kinds.index(inspect.Parameter.VAR_POSITIONAL)
            shapes = (*per_input[:fixed], tuple(per_input[fixed:]))
        else:
            shapes = tuple(per_input)
    try:
        with torch.no_grad(), _eager_attention(), _quiet():
            program = torch.onnx.export(
                module,
                tuple(example),
                input_names=list(input_names),
                output_names=list(output_names),
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=shapes,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as err:  # the exporter's own error types: said in one line
        raise ExportError(
            f"torch.onnx could not export {type(module).__name__}: {_reason(err)}"
        ) from None
    assert program is not None
    program.save(str(path))
    _check_free(path, dynamic, input_names)
    return path


def _check_free(
    path: Path, dynamic: Mapping[str, Mapping[int, str]] | None, input_names: Sequence[str]
) -> None:
    """ExportError where a dimension asked to stay free came out fixed: the exporter may
    fall back to the example's sizes instead of failing (pytorch#152018)."""
    if not dynamic:
        return
    graph = _onnx().load(str(path), load_external_data=False).graph
    for value in graph.input:
        if value.name not in input_names:
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, label in dynamic.get(value.name, {}).items():
            if axis < len(dims) and not dims[axis].dim_param:
                raise ExportError(
                    f"the exported graph fixed {value.name}'s dimension {axis} ({label}) at "
                    f"{dims[axis].dim_value}; the model reads it as a constant somewhere"
                )


def _export_torchscript(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic: Mapping[str, Mapping[int, str]],
    opset: int,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    try:
        with torch.no_grad(), _eager_attention(), _quiet(), _quiet_native():
            torch.onnx.export(
                module,
                tuple(example),
                str(path),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in dynamic.items()},
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
    except Exception as err:
        raise ExportError(
            f"torch.onnx could not export {type(module).__name__}: {_reason(err)}"
        ) from None
    return path


@contextlib.contextmanager
def _quiet_native() -> Iterator[None]:
    """The C++ side's warnings (the TorchScript exporter's shape-inference notes, written to
    file descriptor 2) kept off the user's terminal while it runs."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _reason(err: BaseException) -> str:
    """One line of what went wrong in an exporter's error: the exporter wraps it in a
    step-by-step report whose own first line says little, with the cause under "Exception
    summary"; else the first line of the error its error was raised from."""
    text = str(err)
    if "## Exception summary" in text:
        after = text.split("## Exception summary", 1)[1]
        line = next((x.strip() for x in after.splitlines() if x.strip()), "")
        return line.split(">: ", 1)[-1] if line.startswith("<class") else line
    while err.__cause__ is not None:
        err = err.__cause__
    return next((x.strip() for x in str(err).splitlines() if x.strip()), type(err).__name__)


@contextlib.contextmanager
def _eager_attention() -> Iterator[None]:
    """Attention traced as its plain operators (the eager kernel) whatever the sizes: the
    kernel choice compares sizes, which a dynamic dimension must not meet, and SDPA in a graph
    fixes its sequence lengths (pytorch#152018)."""
    from ..functional.attend import ENV_IMPL

    before = os.environ.get(ENV_IMPL)
    os.environ[ENV_IMPL] = "eager"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV_IMPL]
        else:
            os.environ[ENV_IMPL] = before


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines, warnings and logs kept off the user's terminal (a failure
    is still raised, and said in one line)."""
    import io
    import logging
    import warnings

    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch._guards", "torch.fx")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for lg in loggers:
                lg.setLevel(logging.CRITICAL)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def operators(path: str | Path) -> set[str]:
    """The operator types of a graph's nodes, its functions' and subgraphs' included."""
    onnx = _onnx()
    model = onnx.load(str(path))
    found: set[str] = set()

    def walk(nodes: Iterable[Any]) -> None:
        for node in nodes:
            found.add(node.op_type)
            for attr in node.attribute:
                if attr.g is not None and len(attr.g.node):
                    walk(attr.g.node)
                for g in attr.graphs:
                    walk(g.node)

    walk(model.graph.node)
    for fn in model.functions:
        walk(fn.node)
    return found


def set_ir_version(path: str | Path, version: int = IR_1_14) -> None:
    """Mark the graph at ``path`` with the older IR ``version``, for a runtime that refuses
    newer files (the graph must not use what came after it: ``check_graph`` checks it)."""
    onnx = _onnx()
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, version)
    onnx.save(model, str(path))


def check_graph(
    path: str | Path,
    *,
    allowed: Iterable[str] | None = None,
    max_opset: int = OPSET,
    max_ir: int | None = None,
) -> dict[str, Any]:
    """ExportError unless the graph at ``path`` is valid ONNX, float32 at its inputs and
    outputs, of opset <= ``max_opset`` (and IR version <= ``max_ir``), without training-only
    nodes and (with ``allowed``) without an operator outside ``allowed``. Returns {"opset",
    "ir_version", "operators"}."""
    onnx = _onnx()
    model = onnx.load(str(path))
    if max_ir is not None and model.ir_version > max_ir:
        raise ExportError(f"{path} is ONNX IR version {model.ir_version}; at most {max_ir}")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{path} is not a valid ONNX graph: {str(err).splitlines()[0]}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > max_opset:
        raise ExportError(f"{path} uses opset {opset}; at most {max_opset} is allowed")
    ops = operators(path)
    training = sorted(ops & TRAINING_ONLY)
    if training:
        raise ExportError(f"{path} holds training-only nodes: {', '.join(training)}")
    if allowed is not None:
        outside = sorted(ops - set(allowed))
        if outside:
            raise ExportError(
                f"{path} uses operators outside the allowed set: {', '.join(outside)}"
            )
    for value in [*model.graph.input, *model.graph.output]:
        elem = value.type.tensor_type.elem_type
        if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.BOOL):
            raise ExportError(f"{path}: {value.name} is not float32 (ONNX type {elem})")
    return {"opset": opset, "ir_version": model.ir_version, "operators": sorted(ops)}


def session(path: str | Path, threads: int = 1):
    """An onnxruntime inference session of the graph at ``path`` (CPU, ``threads`` threads)."""
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - the [export] extra
        raise ExportError(
            'running a graph needs the export extra: pip install "attnkit[export]"'
        ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: shape-inference notes are not the user's
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own error types (a missing or corrupt file)
        first = next((x for x in str(err).splitlines() if x.strip()), type(err).__name__)
        raise ExportError(f"onnxruntime cannot load {path}: {first}") from None


def run_graph(path: str | Path, inputs: Mapping[str, np.ndarray], threads: int = 1) -> dict:
    """The graph's outputs by name in onnxruntime (CPU, ``threads`` threads)."""
    graph = session(path, threads)
    names = [o.name for o in graph.get_outputs()]
    return dict(zip(names, graph.run(names, dict(inputs)), strict=True))


def parity(
    module: nn.Module,
    path: str | Path,
    inputs: Sequence[Mapping[str, torch.Tensor]],
    output_names: Sequence[str],
) -> float:
    """The largest absolute difference between the module's outputs and the graph's over every
    input set of ``inputs`` (each a name -> tensor mapping, in the module's argument order)."""
    worst = 0.0
    module = module.eval()
    for feed in inputs:
        with torch.no_grad():
            want = module(*feed.values())
        want = want if isinstance(want, tuple) else (want,)
        got = run_graph(path, {k: v.numpy() for k, v in feed.items()})
        for name, w in zip(output_names, want, strict=True):
            g = got[name]
            if g.shape != tuple(w.shape):
                raise ExportError(
                    f"{name}: the graph gives shape {g.shape}, PyTorch {tuple(w.shape)}"
                )
            worst = max(worst, float(np.abs(g - w.numpy()).max(initial=0.0)))
    return worst


def exporter_for(module: nn.Module) -> str:
    """The exporter a module's graph goes through: the TorchScript-based one where it holds
    a recurrent layer (``nn.GRU`` / ``nn.LSTM``, whose number of steps ``torch.export`` would
    fix), else dynamo."""
    return "torchscript" if any(isinstance(m, nn.RNNBase) for m in module.modules()) else "dynamo"


def write_meta(
    out: Path,
    recipe: str,
    graphs: Mapping[str, Path],
    checked: Sequence[Mapping[str, Any]],
    **fields: Any,
) -> dict[str, Any]:
    """Write ``out/model.json``: the format, the recipe, the graph files, the highest opset
    and every operator of the ``checked`` graphs (``check_graph``'s results), and ``fields``.
    Returns what it wrote."""
    meta = {
        "format": FORMAT,
        "recipe": recipe,
        "graphs": {name: path.name for name, path in graphs.items()},
        "opset": max(c["opset"] for c in checked),
        **fields,
        "operators": sorted({op for c in checked for op in c["operators"]}),
    }
    (out / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return meta


def read_meta(directory: str | Path) -> dict[str, Any]:
    """``model.json`` of an exported model directory; ExportError (one line) when it is
    missing, unreadable or of another format."""
    path = Path(directory) / META
    if not Path(directory).is_dir():
        raise ExportError(f"no exported model directory at {directory}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{directory} holds no {META}: export the model first") from None
    except (OSError, UnicodeError, json.JSONDecodeError) as err:
        raise ExportError(f"{path} cannot be read: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportError(f"{path} is not an attnkit export (format {FORMAT!r})")
    return meta
