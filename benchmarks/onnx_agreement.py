"""Whether an exported encoder-decoder writes what its checkpoint writes: every input decoded
by PyTorch (``attnkit predict``) and by the exported graphs in onnxruntime (``attnkit predict
--runtime onnx``), the rows whose outputs differ counted.

    python benchmarks/onnx_agreement.py --checkpoint runs/times \\
        --data benchmarks/data/human_times.tsv --data benchmarks/data/human_times_2.tsv \\
        --held-out 2000

The checkpoint is exported to a temporary directory (or ``--model DIR`` is read). ``--data``
files are TSVs of (input, target); ``--held-out N`` takes the first N held-out pairs of the
checkpoint's generated data (all of them with 0). Inputs the model cannot read (characters it
never saw) are refused alike by both and counted apart. Greedy decoding unless ``--beam``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def compare(recipe, run, exported, texts: list[str], beam: int) -> dict[str, float]:
    """Counts of rows, unreadable rows and rows whose outputs differ, and the largest
    difference of the attention weights over the rows that agree."""
    readable = [t for t in texts if not run.task.input_problem(t)]
    want = run.task.decode_many(run.model, readable, beam)
    got = exported.task.decode_many(exported.model, readable, beam)
    differ, worst = 0, 0.0
    for (_, w_ids, w_weights), (_, g_ids, g_weights) in zip(want, got, strict=True):
        if w_ids != g_ids:
            differ += 1
        else:
            if w_weights.numel():
                worst = max(worst, float((w_weights - g_weights).abs().max()))
    return {
        "rows": len(texts),
        "unreadable": len(texts) - len(readable),
        "differ": differ,
        "max_weight_diff": worst,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--model", help="an existing export of the checkpoint (default: export now)")
    p.add_argument("--data", action="append", default=[], help="a TSV of (input, target)")
    p.add_argument("--held-out", type=int, help="the first N held-out generated pairs (0: all)")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from attnkit.export.onnx import read_meta
    from attnkit.recipes.base import recipe_for
    from attnkit.recipes.seq2seq import held_out_pairs
    from attnkit.tasks import read_pairs

    recipe = recipe_for(args.checkpoint)
    run = recipe.load(args.checkpoint)
    sets = [(Path(f).name, [s for s, _ in read_pairs(f)]) for f in args.data]
    if args.held_out is not None:
        held = [s for s, _ in held_out_pairs(run.config)]
        sets.append(("held-out", held[: args.held_out] if args.held_out else held))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.model) if args.model else Path(tmp)
        if not args.model:
            recipe.export(run, directory)
        exported = recipe.load_exported(directory, read_meta(directory))
        print(f"{'inputs':<24}{'rows':>7}{'unreadable':>11}{'differ':>8}{'max |dw|':>11}")
        for name, texts in sets:
            r = compare(recipe, run, exported, texts, args.beam)
            print(
                f"{name:<24}{r['rows']:>7}{r['unreadable']:>11}{r['differ']:>8}"
                f"{r['max_weight_diff']:>11.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
