"""Price models as ONNX graphs: every model variant and target exports, onnxruntime gives
PyTorch's outputs (scaler folded in) at batch sizes not seen at export, the MetaTrader 5 graph
is static and within onnxruntime 1.14's operators, and its .mqh holds the checkpoint's scaler."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from attnkit.cli import main  # noqa: E402
from attnkit.export import check_graph, parity, run_graph  # noqa: E402
from attnkit.export.prices import ORT_1_14, PriceGraph, export  # noqa: E402
from attnkit.models import variants  # noqa: E402
from attnkit.tasks import prices as pr  # noqa: E402
from reference import random_walk_bars  # noqa: E402

WINDOW, F = 12, len(pr.FEATURES)
SMALL = {"attention": {"d_model": 16}, "attention-4h": {"d_model": 16}, "lstm": {"hidden_dim": 8}}


def _run(name: str, kind: str):
    torch.manual_seed(0)
    sizes = {"features": F, "window": WINDOW, "out": pr.outputs(kind), **SMALL.get(name, {})}
    model = variants("series")[name].build(sizes).eval()
    rng = np.random.default_rng(0)
    task = {
        "kind": kind,
        "window": WINDOW,
        "mean": rng.normal(0, 1, F).tolist(),
        "scale": rng.uniform(0.5, 2, F).tolist(),
        "return_scale": 0.003,
    }
    return SimpleNamespace(model=model, task=task, config={"task": task})


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["fractal", "return"])
@pytest.mark.parametrize("name", list(variants("series")))
def test_every_variant_exports_and_equals_pytorch(name, kind, tmp_path):
    run = _run(name, kind)
    written = export(run, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    graph = PriceGraph(run.model, run.task)
    outputs = list(meta["outputs"])
    feeds = [{"features": torch.randn(b, WINDOW, F) * 2} for b in (1, 3, 7)]
    worst = parity(graph, written[0], feeds, outputs)
    assert worst < 1e-5, worst
    got = run_graph(written[0], {"features": feeds[2]["features"].numpy()})
    if kind == "fractal":
        np.testing.assert_allclose(got["prediction"].sum(-1), 1.0, atol=1e-5)
    if "weights" in got:
        heads = run.model.cfg.num_heads
        assert got["weights"].shape == (7, heads, WINDOW)
        np.testing.assert_allclose(got["weights"].sum(-1), 1.0, atol=1e-5)
    assert "Dropout" not in meta["operators"] and meta["opset"] <= 18


@pytest.mark.parametrize("name", list(variants("series")))
def test_the_mt5_graph_is_static_within_onnxruntime_1_14_and_its_mqh_holds_the_scaler(
    name, tmp_path
):
    import onnx

    run = _run(name, "fractal")
    export(run, tmp_path, target="mt5")
    checked = check_graph(tmp_path / "model.onnx", allowed=ORT_1_14, max_opset=18, max_ir=8)
    assert set(checked["operators"]) <= ORT_1_14 and checked["ir_version"] <= 8  # 1.14 loads it
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, WINDOW, F]  # every dimension fixed, as OnnxSetInputShape needs
    mqh = (tmp_path / "model.mqh").read_text()
    mean = re.search(r"ATTNKIT_MEAN\[16\] = \{([^}]*)\}", mqh).group(1)
    scale = re.search(r"ATTNKIT_SCALE\[16\] = \{([^}]*)\}", mqh).group(1)
    assert [float(x) for x in mean.split(",")] == run.task["mean"]
    assert [float(x) for x in scale.split(",")] == run.task["scale"]
    names = re.search(r"ATTNKIT_FEATURE_NAMES\[16\] = \{([^}]*)\}", mqh).group(1)
    assert json.loads(f"[{names}]") == list(pr.FEATURES)
    assert f"#define ATTNKIT_WINDOW {WINDOW}" in mqh
    heads = run.model.cfg.num_heads if "attention" in name else 0
    assert f"#define ATTNKIT_HEADS {heads} " in mqh
    if heads:
        outputs = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output]
        assert outputs[1] == [1, heads, WINDOW]  # what the EA passes OnnxSetOutputShape


def test_the_expert_advisor_computes_every_feature_in_the_graphs_order(tmp_path):
    run = _run("attention-4h", "fractal")
    export(run, tmp_path, target="mt5")
    ea = (tmp_path / "model.mq5").read_text()
    assert '#include "model.mqh"' in ea and '#resource "model.onnx"' in ea
    for call in ("OnnxCreateFromBuffer", "OnnxSetInputShape", "OnnxSetOutputShape", "OnnxRun"):
        assert call in ea
    # one assignment per feature, in the order of the input's last dimension, each named
    found = re.findall(r"f\[(\d+)\] = .*// (\w+)", ea)
    assert [int(i) for i, _ in found] == list(range(F))
    assert [n for _, n in found] == list(pr.FEATURES)
    mqh = (tmp_path / "model.mqh").read_text()
    used = set(re.findall(r"ATTNKIT_[A-Z_]+", ea))
    assert used <= set(re.findall(r"ATTNKIT_[A-Z_]+", mqh))  # every constant it reads exists


def test_features_over_the_expert_advisors_history_equal_those_over_the_whole_series():
    # the EA runs the indicators over its last InpHistory (400) bars only: the exponential
    # averages forget where they started, so the window it feeds the graph is attnkit's
    bars = random_walk_bars(3000, seed=7)
    whole = pr.features(bars)[-WINDOW:]
    recent = pr.features(bars.iloc[-400:])[-WINDOW:]
    np.testing.assert_allclose(recent, whole, atol=1e-6, rtol=0)


def test_a_trained_checkpoint_exported_for_mt5_predicts_its_test_split_as_attnkit_does(
    tmp_path, capsys
):
    from attnkit.recipes import price_train

    data = tmp_path / "bars.csv"
    random_walk_bars(700, seed=4).to_csv(data, index_label="Date")
    ckpt, out = tmp_path / "ckpt", tmp_path / "mt5"
    train = ["train", "prices", "--data", str(data), "--d-model", "16", "--heads", "2"]
    assert main([*train, "--epochs", "2", "--threads", "1", "--out", str(ckpt)]) == 0
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--target", "mt5"]) == 0
    run = price_train.load(ckpt)
    bars = pr.read_ohlcv(data)
    want = price_train.predict(run, bars)
    ends = np.arange(*run.task["splits"][2])
    feats = pr.features(bars).astype(np.float32)
    got = np.stack(
        [
            run_graph(out / "model.onnx", {"features": feats[e - 19 : e + 1][None]})["prediction"][
                0
            ]
            for e in ends
        ]
    )
    expected = want.loc[bars.index[ends], ["p_none", "p_buy", "p_sell"]].to_numpy()
    assert np.abs(got - expected).max() < 1e-5
    assert (got.argmax(1) == expected.argmax(1)).all()


@pytest.mark.bad_input
def test_export_refuses_in_one_line_what_it_cannot_export(tmp_path, capsys):
    from attnkit.recipes import base

    class Plain(base.Recipe):  # a recipe without an export hook
        name, what, settings = "plain-test", "a plain model", base.TrainSettings

        def owns(self, config):
            return config.get("task", {}).get("name") == "caption"

    out = Path(__file__).parents[1] / "fixtures" / "checkpoints" / "caption-row"
    assert not Plain().implements("export")
    err = str(Plain().refuse("export"))
    assert "attnkit export does not apply" in err and "\n" not in err
    capsys.readouterr()
    assert (
        main(["export", "--checkpoint", str(out), "--out", str(tmp_path / "x"), "--target", "mt6"])
        == 2
    )
