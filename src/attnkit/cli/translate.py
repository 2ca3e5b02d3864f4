"""``attnkit translate``: translate with a trained translation model (``recipes.translate``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .._text import json_line, printable
from ..recipes import translate as recipe
from ..recipes.seq2seq import END, output_labels
from ..tasks.subword import words_of
from .arguments import add_runtime, path, positive_int, utf8_text
from .errors import UserError
from .verbs import open_run

CHUNK = 256  # texts decoded together (sorted by length) before their lines are printed


def _lines(name: str) -> list[str]:
    file = Path(name)
    if not file.is_file():
        raise UserError(f"no such file: {file}")
    try:
        return file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{file} is not UTF-8 text (byte {err.start})") from None


def merge_words(weights: torch.Tensor, rows: list[str], cols: list[str]):
    """Subword weights (..., R, C) merged to words: a source word gets the sum of its subwords'
    weights (a row still sums to 1); an output word the mean of its subwords' rows. The end
    of sequence (a last row labelled END) stays a row of its own."""
    tail = rows[-1:] if rows and rows[-1] == END else []
    out_words, in_words = words_of(rows[: len(rows) - len(tail)]), words_of(cols)
    by_col = torch.stack([weights[..., idx].sum(-1) for _, idx in in_words], -1)
    merged = [by_col[..., idx, :].mean(-2) for _, idx in out_words]
    merged += [by_col[..., -1, :]] * len(tail)
    return torch.stack(merged, -2), [w for w, _ in out_words] + tail, [w for w, _ in in_words]


def _plots(run: recipe.TranslateRun, i: int, text: str, result, out: Path, words: bool) -> list:
    """The alignment PNGs of one translation: the RNN's attention, or the Transformer's
    cross-attention (every head of each layer, and their mean); written paths."""
    from ..viz import save_head_grid, save_heatmap

    rows = output_labels(result.output_pieces, result.weights)

    def labelled(weights):
        return (
            merge_words(weights, rows, result.source_pieces)
            if words
            else (weights, rows, result.source_pieces)
        )

    if not hasattr(run.model, "decoder"):
        w, r, c = labelled(result.weights)
        return [save_heatmap(w, c, r, out / f"{i:03d}.png", title="attention")]
    cross = recipe.cross_attention(run, text, result.output_ids)[:, :, : len(rows)]  # (L, H, R, C)
    written = []
    for layer, heads in enumerate(cross):
        w, r, c = labelled(heads)
        written.append(
            save_head_grid(
                w, c, r, out / f"{i:03d}_layer{layer}.png", title=f"cross-attention, layer {layer}"
            )
        )
    w, r, c = labelled(cross.mean((0, 1)))
    written.append(
        save_heatmap(
            w, c, r, out / f"{i:03d}_mean.png", title="cross-attention, mean of layers and heads"
        )
    )
    return written


def cmd_translate(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.text and not args.input:
        raise UserError("give texts to translate, or --input FILE (one per line)")
    texts = list(args.text) + (_lines(args.input) if args.input else [])
    plots = Path(args.plot) if args.plot else None
    if plots and plots.exists() and not plots.is_dir():
        raise UserError(f"--plot {plots} is a file; name a directory for the PNGs")
    _, run, _ = open_run(args, "translate", recipe.TranslateRecipe)
    if plots and getattr(run.model.cfg, "attention", None) == "none":
        raise UserError(
            "this model was trained without attention (--attention none): it has "
            "no alignment to plot"
        )
    skip = [not text.strip() and bool(args.input) for text in texts]  # blank lines stay blank
    for i, text in enumerate(texts):  # every line is checked before any is decoded
        problem = None if skip[i] else run.task.input_problem(text)
        if problem:
            raise UserError(f"line {i + 1}: {problem}" if args.input else problem)
    for at in range(0, len(texts), CHUNK):  # printed a chunk at a time, in input order
        chunk = range(at, min(at + CHUNK, len(texts)))
        try:
            done = iter(
                recipe.translate(run, [texts[i] for i in chunk if not skip[i]], beam=args.beam)
            )
        except ValueError as err:
            raise UserError(str(err)) from None
        for i in chunk:
            if skip[i]:
                print("")
                continue
            result = next(done)
            if args.json:
                print(
                    json_line(
                        {
                            "input": texts[i],
                            "output": result.text,
                            "source_pieces": result.source_pieces,
                            "output_pieces": result.output_pieces,
                            "weights": [
                                [round(float(x), 6) for x in row] for row in result.weights
                            ],
                        }
                    )
                )
            else:
                print(printable(result.text), flush=True)
            if plots:
                for written in _plots(run, i, texts[i], result, plots, args.words):
                    print(f"wrote {written}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate with a trained translation model")
    add_runtime(p, "attnkit train translate")
    p.add_argument("text", nargs="*", type=utf8_text)
    p.add_argument(
        "--input",
        type=path,
        help="a UTF-8 file: one text per line, translations printed one per line",
    )
    p.add_argument("--beam", type=positive_int, default=1, help="beam width (1 = greedy)")
    p.add_argument(
        "--plot",
        type=path,
        help="write alignment heatmaps (PNG) into this "
        "directory: the RNN's attention; the Transformer's cross-attention of every "
        "layer and head, and their mean",
    )
    p.add_argument("--words", action="store_true", help="merge subwords into words in the plots")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_translate)
