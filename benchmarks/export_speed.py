"""Batch-1 latency of exported models in onnxruntime against PyTorch eager, one thread each,
medians over interleaved repeats, and the size of each graph.

    python benchmarks/export_speed.py --checkpoint runs/eurusd --checkpoint runs/cbam

Each checkpoint is exported to a temporary directory through ``attnkit export``; the inputs
are the model's own kind: a window of features or an image drawn at random, or for an
encoder-decoder (dates, times) one held-out input decoded greedily end to end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch


def _time(fn, repeats: int) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True)
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    p.add_argument("--calls", type=int, default=200, help="calls per round")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    import onnxruntime as ort

    from attnkit.recipes.base import recipe_for

    print(f"{'checkpoint':<28}{'graph KiB':>10}{'torch ms':>10}{'ort ms':>10}{'torch/ort':>10}")
    for ckpt in args.checkpoint:
        recipe = recipe_for(ckpt)
        run = recipe.load(ckpt)
        with tempfile.TemporaryDirectory() as tmp:
            written = recipe.export(run, Path(tmp))
            size = sum(p.stat().st_size for p in written if p.suffix == ".onnx") / 1024
            torch_call, ort_call = _calls(recipe, run, Path(tmp), ort)
            with torch.no_grad():
                times: dict[str, list[float]] = {"torch": [], "ort": []}
                for _ in range(args.rounds):
                    times["torch"].append(_time(torch_call, args.calls))
                    times["ort"].append(_time(ort_call, args.calls))
        t, o = (statistics.median(times[k]) * 1e3 for k in ("torch", "ort"))
        print(f"{Path(ckpt).name:<28}{size:>10.1f}{t:>10.3f}{o:>10.3f}{t / o:>10.2f}")
    return 0


def _calls(recipe, run, directory: Path, ort):
    """(PyTorch call, onnxruntime call) on one input of the model's kind. An encoder-decoder
    decodes one held-out input greedily, end to end (encoder and every step), each way; a
    single graph (prices, images) runs once on a random input against the module it was
    exported from."""
    from attnkit.export import images, prices
    from attnkit.export.onnx import read_meta

    meta = read_meta(directory)
    if "step" in meta["graphs"]:
        from attnkit.recipes.seq2seq import held_out_pairs

        exported = recipe.load_exported(directory, meta)
        text = held_out_pairs(run.config)[0][0]
        return (
            partial(run.task.predict, run.model, [text]),
            partial(exported.task.predict, exported.model, [text]),
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    path = directory / "model.onnx"
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1 if isinstance(d, str) else d for d in inp.shape]
    if len(shape) == 4:  # an image, at its data set's size
        shape[2:] = [8, 8] if run.config["task"]["data"] == "digits" else [28, 28]
        module = images.ImageGraph(run.model).eval()
    else:
        module = prices.PriceGraph(run.model, run.task).eval()
    x = torch.rand(*shape)
    return partial(module, x), partial(session.run, None, {inp.name: x.numpy()})


if __name__ == "__main__":
    raise SystemExit(main())
