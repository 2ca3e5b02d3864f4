"""``attnkit train translate``, ``attnkit translate`` and ``eval`` of translation models: thin
wrappers around ``recipes.translate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..recipes import translate as recipe
from ..recipes.seq2seq import END, output_labels
from ..tasks import read_pairs
from ..tasks.subword import words_of
from ..tasks.translation import DIRECTIONS
from .arguments import fraction, path, positive_int, refuse_flags
from .errors import UserError

# train options that mean nothing to translation
CHUNK = 256  # texts decoded together (sorted by length) before their lines are printed
NOT_FOR_TRANSLATION = ("n", "normalize", "context", "unknown_token", "target")


def is_translation_checkpoint(config: dict | None) -> bool:
    return isinstance(config, dict) and (config.get("task") or {}).get("name") == "translate"


def cmd_train(args: argparse.Namespace) -> int:
    refuse_flags(args, NOT_FOR_TRANSLATION, "translate", "translation")
    if args.data:
        raise UserError("translation trains on the English-Spanish Bible verse pairs; --data "
                        "does not apply")  # fmt: skip
    model = args.model or "rnn"
    if model not in recipe.MODELS:
        raise UserError(f"--model for translate is one of {', '.join(recipe.MODELS)}")
    rnn = {"attention": args.attention, "hidden_dim": args.hidden}
    transformer = {"d_model": args.d_model, "num_heads": args.heads,
                   "encoder_layers": args.layers, "decoder_layers": args.layers,
                   "positions": args.positions}  # fmt: skip
    wrong = rnn if model == "transformer" else transformer
    flags = [k for k, v in wrong.items() if v is not None]
    if flags:
        raise UserError(f"{', '.join(flags)} do not apply to {model}")
    settings = {**(transformer if model == "transformer" else rnn), "epochs": args.epochs,
                "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
                "patience": args.patience,
                "time_limit": None if args.minutes is None else args.minutes * 60}  # fmt: skip
    run = recipe.train(args.direction or "en-es", out=args.out, model=args.model,
                       resume=args.resume, overwrite=args.overwrite, threads=args.threads,
                       vocab_size=args.vocab_size, joined=args.joined,
                       batch_by=args.batch_by, **settings)  # fmt: skip
    m = run.config["metrics"]
    print(f"validation chrF {m['chrf']:.2f}, BLEU {m['bleu']:.2f} (epoch {run.config['epoch']}); "
          f"checkpoint in {args.out}")  # fmt: skip
    print(f"score the test books: attnkit eval --checkpoint {args.out}")
    return 0


def _lines(name: str) -> list[str]:
    file = Path(name)
    if not file.is_file():
        raise UserError(f"no such file: {file}")
    try:
        return file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{file} is not UTF-8 text (byte {err.start})") from None


def cmd_eval(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    run = recipe.load(args.checkpoint)
    pairs = read_pairs(args.data) if args.data else None
    try:
        scores, outputs = recipe.evaluate(run, pairs, beam=getattr(args, "beam", 1))
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.save:
        pairs = pairs or recipe.held_out(run)
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        for name, lines in (("source.txt", [s for s, _ in pairs]),
                            ("reference.txt", [t for _, t in pairs]),
                            ("hypothesis.txt", outputs)):  # fmt: skip
            (out / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if args.json:
        print(json.dumps(scores, ensure_ascii=False))
    else:
        print(f"{'verses':<8}{scores['n']}")
        print(f"{'BLEU':<8}{scores['bleu']:.2f}  {scores['bleu_signature']}")
        print(f"{'chrF':<8}{scores['chrf']:.2f}  {scores['chrf_signature']}")
        if args.save:
            print(f"source, reference and hypothesis written to {args.save}/")
    return 0


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
        return merge_words(weights, rows, result.source_pieces) if words else (
            weights, rows, result.source_pieces)  # fmt: skip

    if not hasattr(run.model, "decoder"):
        w, r, c = labelled(result.weights)
        return [save_heatmap(w, c, r, out / f"{i:03d}.png", title="attention")]
    cross = recipe.cross_attention(run, text, result.output_ids)[:, :, : len(rows)]  # (L, H, R, C)
    written = []
    for layer, heads in enumerate(cross):
        w, r, c = labelled(heads)
        written.append(save_head_grid(w, c, r, out / f"{i:03d}_layer{layer}.png",
                                      title=f"cross-attention, layer {layer}"))  # fmt: skip
    w, r, c = labelled(cross.mean((0, 1)))
    written.append(save_heatmap(w, c, r, out / f"{i:03d}_mean.png",
                                title="cross-attention, mean of layers and heads"))  # fmt: skip
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
    run = recipe.load(args.checkpoint)
    if plots and getattr(run.model.cfg, "attention", None) == "none":
        raise UserError("this model was trained without attention (--attention none): it has "
                        "no alignment to plot")  # fmt: skip
    skip = [not text.strip() and bool(args.input) for text in texts]  # blank lines stay blank
    for i, text in enumerate(texts):  # every line is checked before any is decoded
        problem = None if skip[i] else run.task.input_problem(text)
        if problem:
            raise UserError(f"line {i + 1}: {problem}" if args.input else problem)
    for at in range(0, len(texts), CHUNK):  # printed a chunk at a time, in input order
        chunk = range(at, min(at + CHUNK, len(texts)))
        try:
            done = iter(recipe.translate(run, [texts[i] for i in chunk if not skip[i]],
                                         beam=args.beam))  # fmt: skip
        except ValueError as err:
            raise UserError(str(err)) from None
        for i in chunk:
            if skip[i]:
                print("")
                continue
            result = next(done)
            if args.json:
                print(json.dumps({"input": texts[i], "output": result.text,
                                  "source_pieces": result.source_pieces,
                                  "output_pieces": result.output_pieces,
                                  "weights": [[round(float(x), 6) for x in row]
                                              for row in result.weights]},
                                 ensure_ascii=False))  # fmt: skip
            else:
                print(result.text, flush=True)
            if plots:
                for written in _plots(run, i, texts[i], result, plots, args.words):
                    print(f"wrote {written}", file=sys.stderr)
    return 0


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--direction", choices=DIRECTIONS, help="translate: en-es (default) or es-en")
    p.add_argument("--vocab-size", type=positive_int, help=f"translate: subwords per language "
                   f"(default {recipe.VOCAB_SIZE}); classify: subwords (default 8000)")  # fmt: skip
    p.add_argument("--joined", type=fraction, help="translate: also train on pairs of two "
                   "consecutive verses joined, this many per training verse (default "
                   f"{recipe.JOINED}; 0: none), so long verses are not rare")  # fmt: skip
    p.add_argument("--batch-by", choices=recipe.BATCH_CHOICES, help="translate: training "
                   "batches of about equal subwords, so every subword weighs alike in the "
                   f"loss, or of equal verses (default {recipe.BATCH_BY})")  # fmt: skip


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate with a trained translation model")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("text", nargs="*")
    p.add_argument("--input", type=path, help="a UTF-8 file: one text per line, translations "
                   "printed one per line")  # fmt: skip
    p.add_argument("--beam", type=positive_int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--plot", type=path, help="write alignment heatmaps (PNG) into this "
                   "directory: the RNN's attention; the Transformer's cross-attention of every "
                   "layer and head, and their mean")  # fmt: skip
    p.add_argument("--words", action="store_true", help="merge subwords into words in the plots")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_translate)
