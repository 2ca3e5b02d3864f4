"""Batch-1 latency of exported models in onnxruntime against PyTorch eager, one thread each,
medians over interleaved repeats, and the size of each graph.

    python benchmarks/export_speed.py --checkpoint runs/eurusd --checkpoint runs/cbam

Each checkpoint is exported to a temporary directory through ``attnkit export``; the inputs
are the model's own kind (a window of features, an image), drawn at random.
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
            path = recipe.export(run, Path(tmp))[0]
            size = path.stat().st_size / 1024
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            inp = session.get_inputs()[0]
            shape = [1 if isinstance(d, str) else d for d in inp.shape]
            if len(shape) == 4:  # an image, at its data set's size
                shape[2:] = [8, 8] if run.config["task"]["data"] == "digits" else [28, 28]
            x = torch.rand(*shape)
            module = _module(recipe, run)
            feed = {inp.name: x.numpy()}
            with torch.no_grad():
                times: dict[str, list[float]] = {"torch": [], "ort": []}
                for _ in range(args.rounds):
                    times["torch"].append(_time(partial(module, x), args.calls))
                    times["ort"].append(_time(partial(session.run, None, feed), args.calls))
        t, o = (statistics.median(times[k]) * 1e3 for k in ("torch", "ort"))
        print(f"{Path(ckpt).name:<28}{size:>10.1f}{t:>10.3f}{o:>10.3f}{t / o:>10.2f}")
    return 0


def _module(recipe, run):
    """The PyTorch module the graph was exported from (its inputs and outputs)."""
    from attnkit.export import images, prices

    if recipe.name == "prices":
        return prices.PriceGraph(run.model, run.task).eval()
    return images.ImageGraph(run.model).eval()


if __name__ == "__main__":
    raise SystemExit(main())
