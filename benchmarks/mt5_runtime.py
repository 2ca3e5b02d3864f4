"""A price model exported for MetaTrader 5 (``attnkit export --target mt5``), run in
onnxruntime 1.15.0 and in attnkit's pinned onnxruntime over the checkpoint's test split, against
``attnkit predict``: the largest difference in the prediction and the bars whose predicted
class differs.

    python benchmarks/mt5_runtime.py --checkpoint runs/eurusd

MetaTrader 5 runs onnxruntime 1.14, which has no wheel for this project's Python; 1.15.0 is
the oldest that has. It lives in an environment of its own (``--env``, made on first use from
``benchmarks/mt5/requirements.txt``), never in attnkit's: the graph is written to a temporary
directory and the 1.15.0 interpreter runs it there, on the same windows of features.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RUN_GRAPH = """
import sys, numpy as np, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
name = session.get_outputs()[0].name
out = np.concatenate([session.run([name], {"features": w[None]})[0] for w in x])
np.save(sys.argv[3], out)
print(ort.__version__)
"""


def environment(where: Path) -> Path:
    """The interpreter of the onnxruntime 1.15.0 environment at ``where`` (made if missing)."""
    python = where / "bin" / "python"
    if not python.exists():
        print(f"making the onnxruntime 1.15.0 environment in {where} ...", file=sys.stderr)
        venv.create(where, with_pip=True)
        requirements = HERE / "mt5" / "requirements.txt"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
        )
    return python


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a price checkpoint (attnkit train prices)")
    p.add_argument("--data", help="the bars (default: the checkpoint's own)")
    p.add_argument("--env", default=str(HERE / "out" / "ort-1.15.0"))
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from attnkit.export import check_graph, run_graph
    from attnkit.export.prices import ORT_1_14
    from attnkit.recipes import price_train
    from attnkit.recipes.base import recipe_for
    from attnkit.tasks import prices as pr

    python = environment(Path(args.env))
    recipe = recipe_for(args.checkpoint)
    run = recipe.load(args.checkpoint)
    bars = price_train.load_bars(args.data) if args.data else price_train.own_bars(run)
    want = price_train.predict(run, bars)
    window = run.task["window"]
    ends = np.arange(*run.task["splits"][2])
    feats = pr.features(bars).astype(np.float32)
    x = np.stack([feats[e - window + 1 : e + 1] for e in ends])
    columns = [f"p_{c}" for c in pr.CLASSES[run.task["kind"]]] or ["return"]
    expected = want.loc[bars.index[ends], columns].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        recipe.export(run, out, target="mt5")
        checked = check_graph(out / "model.onnx", allowed=ORT_1_14, max_opset=18, max_ir=8)
        np.save(out / "x.npy", x)
        version = subprocess.run(
            [
                str(python),
                "-c",
                RUN_GRAPH,
                str(out / "model.onnx"),
                str(out / "x.npy"),
                str(out / "old.npy"),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        old = np.load(out / "old.npy").reshape(len(ends), -1)
        pinned = np.concatenate(
            [run_graph(out / "model.onnx", {"features": w[None]})["prediction"] for w in x]
        ).reshape(len(ends), -1)
        mqh = (out / "model.mqh").read_text()
    import onnxruntime

    expected = expected.reshape(len(ends), -1)
    report = {
        "bars": len(ends),
        "opset": checked["opset"],
        "ir_version": checked["ir_version"],
        "within_1_14_allowlist": True,
        "runtimes": {},
    }
    for name, got in (
        (f"onnxruntime {version}", old),
        (f"onnxruntime {onnxruntime.__version__}", pinned),
    ):
        row = {"max_abs_diff": float(np.abs(got - expected).max())}
        if expected.shape[1] > 1:
            row["class_differs"] = int((got.argmax(1) != expected.argmax(1)).sum())
        report["runtimes"][name] = row
    report["mqh_constants"] = mqh.count("#define")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
