"""The Raffel & Ellis feed-forward attention model (no recipe writes a checkpoint of it) exports
through attnkit.export's Python API: onnxruntime gives PyTorch's output and weights for
batches and sequence lengths not seen at export."""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.export import check_graph, export_graph, parity, run_graph  # noqa: E402
from attnkit.models import build  # noqa: E402


class Graph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x, lengths):
        return self.model(x, lengths, return_weights=True)


@pytest.mark.reference
def test_raffel_ellis_exports_with_free_lengths(tmp_path):
    torch.manual_seed(0)
    model = build("raffel-ellis", {"inputs": 2, "hidden_dim": 16}).eval()
    path = export_graph(
        Graph(model),
        [torch.randn(2, 7, 2), torch.tensor([7, 5])],
        tmp_path / "model.onnx",
        input_names=["x", "lengths"],
        output_names=["y", "weights"],
        dynamic={"x": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}},
    )
    assert check_graph(path)["opset"] <= 18
    feeds = [
        {"x": torch.randn(b, t, 2), "lengths": torch.tensor([t] + [max(1, t // 2)] * (b - 1))}
        for b, t in ((1, 1), (3, 50), (4, 300))
    ]
    assert parity(Graph(model), path, feeds, ["y", "weights"]) < 1e-5
    got = run_graph(path, {k: v.numpy() for k, v in feeds[2].items()})
    np.testing.assert_allclose(got["weights"].sum(-1), 1.0, atol=1e-5)
    assert (got["weights"][1:, 150:] == 0).all()  # nothing past each row's length
