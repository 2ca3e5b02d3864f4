"""Models that leave Python: ONNX graphs checked against onnxruntime, and bundles for the
runtimes that load them (MetaTrader 5). The [export] extra (onnx, onnxscript, onnxruntime).

A recipe's ``export`` hook wraps its model in a module whose inputs and outputs are plain
float tensors (``onnx.export_graph``), checks the graph (``onnx.check_graph``: no training-only
node, every operator allowed) and its outputs against PyTorch's (``onnx.parity``).
"""

from .onnx import ExportError, check_graph, export_graph, operators, parity, run_graph

__all__ = ["ExportError", "check_graph", "export_graph", "operators", "parity", "run_graph"]
