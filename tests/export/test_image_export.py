"""Image classifiers as ONNX graphs: every attention block exports, and onnxruntime gives
PyTorch's probabilities and maps at batch and image sizes not seen at export."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.cli import main  # noqa: E402
from attnkit.export import parity, run_graph  # noqa: E402
from attnkit.export.images import ImageGraph  # noqa: E402
from attnkit.models import BLOCKS, build  # noqa: E402


@pytest.mark.reference
@pytest.mark.parametrize("block", BLOCKS)
def test_every_block_exports_and_equals_pytorch(block, tmp_path):
    from types import SimpleNamespace

    from attnkit.export.images import export

    torch.manual_seed(0)
    model = build("image-classifier", {"in_channels": 1, "classes": 4, "block": block}).eval()
    run = SimpleNamespace(model=model, config={"task": {"classes": list("abcd")}})
    path, _ = export(run, tmp_path)
    graph = ImageGraph(model)
    meta = json.loads((tmp_path / "model.json").read_text())
    names = list(meta["outputs"])
    assert names[0] == "probabilities" and len(names) == 1 + len(graph.names)
    feeds = [{"images": torch.rand(b, 1, s, s)} for b, s in ((1, 8), (3, 12), (5, 28))]
    assert parity(graph, path, feeds, names) < 1e-5
    got = run_graph(path, {"images": feeds[2]["images"].numpy()})
    np.testing.assert_allclose(got["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert "Dropout" not in meta["operators"]


def test_a_trained_cbam_checkpoint_exports_from_the_command_line(tmp_path, capsys):
    from attnkit.recipes import vision

    ckpt, out = tmp_path / "cbam", tmp_path / "onnx"
    assert (
        main(
            [
                "train",
                "vision",
                "--block",
                "cbam",
                "--epochs",
                "1",
                "--threads",
                "1",
                "--out",
                str(ckpt),
            ]
        )
        == 0
    )
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    run = vision.load(ckpt)
    test = vision.dataset("digits").test
    probs, _ = vision.maps(run, test.x[:64])
    got = run_graph(out / "model.onnx", {"images": test.x[:64].numpy()})["probabilities"]
    assert np.abs(got - probs.numpy()).max() < 1e-5
    assert (got.argmax(1) == probs.numpy().argmax(1)).all()
