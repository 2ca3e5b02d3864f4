"""``attnkit train / eval / predict / show / demo``: thin wrappers around ``recipes.seq2seq``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import torch

from .. import tasks
from ..models import ATTENTIONS
from ..models.transformer import POSITIONS
from ..recipes import lm as lm_recipe
from ..recipes import seq2seq as recipe
from ..recipes.prices import VARIANTS
from ..tasks import char_accuracy, exact_match, read_pairs
from ..tasks.normalize import STEPS
from ..train import read_config
from ..viz import render_weights, save_head_grid, save_heatmap
from ..viz.terminal import ljust, width
from . import classify as classify_cli
from . import lm as lm_cli
from . import prices as prices_cli
from . import translate as translate_cli
from . import vision as vision_cli
from .arguments import count, fraction, path, positive_float, positive_int, refuse_task_flags
from .errors import UserError

DEMO_INPUTS = [
    "Wednesday, September 14, 1994", "14.09.94", "3 mars 2021", "1 января 2000 г.",
    "2021年3月14日", "sábado, 4 de julio de 1998", "5. Mai 1999", "DEC 25, 2049", "7/4/76",
    "the 3rd of March, 2021", "Sept. 14th 1994", "14 sept 1994", "1994-09-14",
]  # fmt: skip
PRICE_MODELS = tuple(VARIANTS)
END, START = recipe.END, recipe.START


def _set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="?", choices=[*tasks.names(), "lm", "translate", "prices",
                                            "classify", "vision", "caption"],
                   help="a generated task; lm: a character language model (default text: the "
                   "World English Bible); translate: English-Spanish on Bible verses; prices: "
                   "a model of a price series (default: EURUSD hourly bars); classify: a text "
                   "classifier (default data: Rotten Tomatoes snippets); vision: an image "
                   "classifier (scikit-learn's digits); caption: a Show, Attend and Tell "
                   "captioner that reads digit strings from images")  # fmt: skip
    p.add_argument("--data", type=path, help="a file of (input, target) pairs instead: TSV, CSV "
                   "or a JSON list of pairs; for lm, a UTF-8 text file; for prices, a CSV of "
                   "OHLCV bars or a series name (eurusd-h1, sp500-d1); for classify, "
                   "rotten-tomatoes, bible-genres or a CSV with text and label "
                   "columns; for vision, digits or fashion-mnist")  # fmt: skip
    p.add_argument("--out", required=True, type=path, help="checkpoint directory")
    p.add_argument("--model", choices=[*recipe.MODELS, *lm_recipe.MODELS, "rnn",
                                       *PRICE_MODELS], help="the RNN "
                   "encoder-decoder with attention, or a Transformer (default: seq2seq); for "
                   "lm, decoder-only (default) or lstm-lm; for translate, rnn (default) or "
                   "transformer; for prices, attention (default), attention-4h, lstm, cnn, mlp "
                   "or dlinear")  # fmt: skip
    p.add_argument("--attention", choices=ATTENTIONS, help="seq2seq's (default: additive)")
    p.add_argument("--d-model", type=positive_int, help="transformer width (default: 128)")
    p.add_argument("--heads", type=positive_int, help="transformer heads (default: 4)")
    p.add_argument("--layers", type=positive_int, help="transformer encoder and decoder "
                   "layers each (default: 2); for lm, the model's (4; LSTM 2)")  # fmt: skip
    p.add_argument("--positions", choices=POSITIONS, help="transformer positions: sinusoidal "
                   "(Vaswani et al.), learned, or rotary (RoPE, relative: q.k depends on the "
                   "distance only) (default: sinusoidal; rotary for lm)")  # fmt: skip
    p.add_argument("--context", type=positive_int, help=f"lm: characters per training window "
                   f"(default: {lm_recipe.CONTEXT})")  # fmt: skip
    p.add_argument("--minutes", type=positive_float, help="stop training after this many "
                   "minutes (the learning rate decays over them)")  # fmt: skip
    p.add_argument("--epochs", type=positive_int, help="the learning-rate schedule's length and "
                   "the most epochs (default: 8 for times, 20 for dates; for --data, from the "
                   "data)")  # fmt: skip
    p.add_argument("--seed", type=count, help="(default: 0)")
    p.add_argument("--n", type=positive_int, help="generated pairs (default: 30000 dates, 20000 "
                   "times; 2.5 times as many for the transformer)")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, help="(default: 128; for --data, from the "
                   "data)")  # fmt: skip
    p.add_argument("--lr", type=positive_float, help="(default: 0.01)")
    p.add_argument("--hidden", type=positive_int, help="decoder state size; the encoder has half "
                   "per direction (default: 128 for times, 96 for dates; for --data, from the "
                   "data)")  # fmt: skip
    p.add_argument("--target", type=fraction, help="stop at this held-out exact match (0..1)")
    p.add_argument("--patience", type=positive_int, help="epochs without improvement (default: 4)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    p.add_argument("--normalize", type=steps, help="input normalisation, comma-separated steps "
                   f"of {','.join(STEPS)}, or 'none' (default: the task's; for --data, the steps "
                   "its inputs already satisfy)")  # fmt: skip
    p.add_argument("--unknown-token", action="store_true", help="give the model an id for "
                   "characters it never saw, instead of refusing inputs with them")  # fmt: skip
    translate_cli.add_train_args(p)
    prices_cli.add_train_args(p)
    classify_cli.add_train_args(p)
    vision_cli.add_train_args(p)
    p.add_argument("--nproc", type=positive_int, help="train in N processes on this machine "
                   "(data parallel, through torchrun; the results do not depend on N)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto (a GPU where torch sees one, else the "
                   "CPU), cpu, cuda or cuda:N; under torchrun each process takes its own GPU "
                   "(NCCL) or the CPU (gloo)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint in --out")


def train_settings(args: argparse.Namespace) -> dict:
    """The recipe's settings from parsed ``train`` arguments; None = not given."""
    return {
        "attention": args.attention, "hidden_dim": args.hidden, "epochs": args.epochs,
        "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr, "target": args.target,
        "patience": args.patience, "d_model": args.d_model, "num_heads": args.heads,
        "encoder_layers": args.layers, "decoder_layers": args.layers,
        "positions": args.positions,
    }  # fmt: skip


def steps(text: str) -> list[str]:
    """--normalize: "none" or comma-separated steps of attnkit.tasks.normalize.STEPS."""
    names = [] if text.strip().lower() == "none" else [s.strip() for s in text.split(",")]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown step(s) {', '.join(map(repr, unknown))}; use 'none' or some of "
            f"{','.join(STEPS)}"
        )
    return names


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args) -> int:
    """``--nproc N``: this command again, in N processes started by torchrun."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={args.nproc}", "-m", "attnkit.cli", "--",
           *_without_nproc(args.argv)]  # fmt: skip
    code = subprocess.run(cmd, check=False).returncode
    if code:
        print(f"attnkit train: a training process failed (exit code {code}); continue the run "
              "with --resume (any --nproc)", file=sys.stderr)  # fmt: skip
    return code


def cmd_train(args) -> int:
    from ..train import devices, distributed

    devices.use(args.device)  # a ValueError names the devices there are
    if args.nproc and args.nproc > 1 and not distributed.under_launcher():
        distributed.check_gpus(args.nproc)  # before launching anything
        return _launch(args)
    with distributed.group() as ctx:
        if ctx.rank > 0:  # one process speaks: the others' output would repeat it
            with contextlib.redirect_stdout(io.StringIO()):
                return _train(args)
        return _train(args)


def _train(args) -> int:
    if args.task == "lm":
        return lm_cli.cmd_train(args)
    if args.task == "translate":
        return translate_cli.cmd_train(args)
    if args.task == "prices":
        return prices_cli.cmd_train(args)
    if args.task == "classify":
        return classify_cli.cmd_train(args)
    if args.task == "vision":
        return vision_cli.cmd_train(args)
    if args.task == "caption":
        return vision_cli.cmd_train_caption(args)
    refuse_task_flags(args)
    if args.label or args.window:
        raise UserError("--label and --window apply to prices only")
    if args.model in PRICE_MODELS:
        raise UserError(f"--model {args.model} is a price model: attnkit train prices")
    if args.direction or args.vocab_size:
        raise UserError("--direction and --vocab-size apply to translate only")
    if args.model == "rnn":
        raise UserError("--model rnn is translate's; the RNN of other tasks is seq2seq")
    if args.context is not None:
        raise UserError("--context applies to lm only")
    args_time = {} if args.minutes is None else {"time_limit": args.minutes * 60}
    run = recipe.train(args.task, args.data, out=args.out, n=args.n, resume=args.resume,
                       overwrite=args.overwrite, threads=args.threads, normalize=args.normalize,
                       unknown_token=args.unknown_token, model=args.model,
                       **train_settings(args), **args_time)  # fmt: skip
    m = run.config["metrics"]
    print(
        f"best held-out exact match {m['exact_match']:.4f}, character accuracy "
        f"{m['char_accuracy']:.4f} (epoch {run.config['epoch']}); checkpoint in {args.out}"
    )
    return 0


def _load(checkpoint: str, command: str) -> recipe.Run:
    config = read_config(checkpoint)
    if lm_cli.is_lm_checkpoint(config):
        raise UserError(f"{checkpoint} holds a language model: use attnkit generate, not "
                        f"{command}")  # fmt: skip
    if translate_cli.is_translation_checkpoint(config):
        raise UserError(f"{checkpoint} holds a translation model: use attnkit translate, not "
                        f"{command}")  # fmt: skip
    if prices_cli.is_price_checkpoint(config):
        raise UserError(f"{checkpoint} holds a price model: use attnkit predict or eval, not "
                        f"{command}")  # fmt: skip
    if classify_cli.is_classifier_checkpoint(config):
        raise UserError(f"{checkpoint} holds a text classifier: use attnkit explain, predict "
                        f"or eval, not {command}")  # fmt: skip
    if vision_cli.is_vision_checkpoint(config):
        raise UserError(f"{checkpoint} holds an image classifier: use attnkit show or eval, "
                        f"not {command}")  # fmt: skip
    if vision_cli.is_caption_checkpoint(config):
        raise UserError(f"{checkpoint} holds a captioner: use attnkit show or eval, not "
                        f"{command}")  # fmt: skip
    return recipe.load(checkpoint)


def cmd_eval(args) -> int:
    _set_threads(args.threads)
    config = read_config(args.checkpoint)
    if lm_cli.is_lm_checkpoint(config):
        return lm_cli.cmd_eval(args, lm_recipe.load(args.checkpoint))
    if translate_cli.is_translation_checkpoint(config):
        return translate_cli.cmd_eval(args)
    if prices_cli.is_price_checkpoint(config):
        return prices_cli.cmd_eval(args)
    if classify_cli.is_classifier_checkpoint(config):
        return classify_cli.cmd_eval(args)
    if vision_cli.is_vision_checkpoint(config):
        return vision_cli.cmd_eval(args)
    if vision_cli.is_caption_checkpoint(config):
        return vision_cli.cmd_eval(args, captioner=True)
    if args.save or args.beam != 1:
        raise UserError("--save and --beam apply to translation checkpoints")
    run = recipe.load(args.checkpoint)
    pairs = read_pairs(args.data) if args.data else recipe.held_out_pairs(run.config)
    readable_rows = [not run.task.input_problem(s) for s, _ in pairs]
    ok = [p for p, fine in zip(pairs, readable_rows, strict=True) if fine]
    bad = [p for p, fine in zip(pairs, readable_rows, strict=True) if not fine]
    outputs = []
    if ok:
        # targets may hold characters the model cannot write: score them as text, not ids
        readable = tasks.PairTask(run.task.src_vocab, _extend(run.task.tgt_vocab, ok),
                                  run.task.max_input_len, run.task.normalizer)  # fmt: skip
        outputs = run.task.decode_all(run.model, readable.dataset(ok))
    outputs += [""] * len(bad)  # unreadable rows count as wrong
    targets = [t for _, t in ok] + [t for _, t in bad]
    result = {
        "exact_match": exact_match(outputs, targets),
        "char_accuracy": char_accuracy(outputs, targets),
        "n": len(pairs),
        "unreadable": len(bad),
    }
    if bad:
        print(f"attnkit eval: {len(bad)} of {len(pairs)} inputs have characters outside the "
              "vocabulary or are empty/too long; counted as wrong", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'examples':<16}{result['n']}")
        print(f"{'exact match':<16}{result['exact_match']:.4f}")
        print(f"{'char accuracy':<16}{result['char_accuracy']:.4f}")
        if bad:
            print(f"{'unreadable':<16}{len(bad)}")
    return 0


def _extend(vocab: tasks.CharVocab, pairs) -> tasks.CharVocab:
    """The vocabulary plus any target character outside it: encodes every target of ``pairs``
    (the targets are only compared as text; decoding uses the model's vocabulary)."""
    extra = {c for _, t in pairs for c in t} - set(vocab.stoi)
    return tasks.CharVocab(vocab.to_list() + sorted(extra)) if extra else vocab


def _predict(run: recipe.Run, texts: list[str], beam: int = 1):
    try:
        return run.task.predict(run.model, texts, beam=beam)
    except ValueError as err:
        raise UserError(str(err)) from None


def _new_png(name: str) -> Path:
    """Where to write a PNG the user named: ".png" added when there is no suffix; an existing
    directory is refused."""
    out = Path(name)
    if out.is_dir():
        raise UserError(f"{out} is a directory; name a PNG file")
    return out if out.suffix else out.with_suffix(".png")


def _plot_dir(name: str) -> Path:
    out = Path(name)
    if out.exists() and not out.is_dir():
        raise UserError(f"--plot {out} is a file; name a directory for the PNGs")
    return out


def cmd_predict(args) -> int:
    _set_threads(args.threads)
    config = read_config(args.checkpoint)
    if prices_cli.is_price_checkpoint(config):
        return prices_cli.cmd_predict(args)
    if classify_cli.is_classifier_checkpoint(config):
        return classify_cli.cmd_predict(args)
    if args.data or args.last is not None:
        raise UserError("--data and --last apply to price checkpoints")
    if not args.text:
        raise UserError("give the text(s) to predict")
    plots = _plot_dir(args.plot) if args.plot else None
    run = _load(args.checkpoint, "predict")
    results = _predict(run, args.text, args.beam)
    for i, (text, (out, weights)) in enumerate(zip(args.text, results, strict=True)):
        if args.json:
            rows = [[round(float(x), 6) for x in row] for row in weights]
            print(json.dumps({"input": text, "output": out, "weights": rows}, ensure_ascii=False))
        else:
            print(f"{text}\t{out}")
        if plots:
            save_heatmap(weights, run.task.normalize(text), recipe.output_labels(out, weights),
                         plots / f"{i:03d}.png", title=text)  # fmt: skip
    return 0


KINDS = {"cross": "cross", "encoder": "encoder", "decoder": "decoder_self"}


def _show_heads(args, run: recipe.Run, out: str, png: Path) -> int:
    """All heads of one layer of a Transformer, teacher-forced on its own output: a PNG grid,
    and one head in the terminal."""
    model = run.model
    stack = model.encoder if args.kind == "encoder" else model.decoder
    if not -len(stack) <= args.layer < len(stack):
        raise UserError(f"--layer {args.layer}: the {args.kind} has {len(stack)} layers "
                        f"(0..{len(stack) - 1}, or -1 for the last)")  # fmt: skip
    heads = model.cfg.num_heads
    if args.head >= heads:
        raise UserError(f"--head {args.head}: the model has {heads} heads (0..{heads - 1})")
    layer = args.layer % len(stack)
    all_weights = recipe.transformer_weights(run, args.text, out, layers=[layer])
    weights = getattr(all_weights, KINDS[args.kind])[layer][0]  # (H, rows, cols)
    read = list(run.task.normalize(args.text))
    written = list(out) + [END]
    rows, cols = {
        "cross": (written, read),
        "encoder": (read, read),
        "decoder": (written, [START, *out]),
    }[args.kind]  # fmt: skip
    weights = weights[:, : len(rows), : len(cols)]
    print(f"{args.text} -> {out}\n")
    print(f"layer {layer} {args.kind} attention, head {args.head}:\n")
    print(render_weights(weights[args.head], rows, cols))
    title = f"{args.text}: layer {layer} {args.kind} attention"
    path = save_head_grid(weights, cols, rows, png, title=title)
    print(f"\nall {heads} heads written to {path}")
    return 0


def cmd_show(args) -> int:
    png = _new_png(args.out or "attention.png")
    config = read_config(args.checkpoint)
    image_show = (vision_cli.cmd_show if vision_cli.is_vision_checkpoint(config)
                  else vision_cli.cmd_show_caption if vision_cli.is_caption_checkpoint(config)
                  else None)  # fmt: skip
    run = None if image_show else _load(args.checkpoint, "show")
    is_transformer = run is not None and hasattr(run.model, "decoder") and hasattr(
        run.model, "encoder")  # fmt: skip
    if not is_transformer and (args.layer is not None or args.head is not None or args.kind):
        raise UserError("--layer, --head and --kind are for Transformer checkpoints")
    if image_show:
        return image_show(args, png)
    ((out, weights),) = _predict(run, [args.text])
    if is_transformer:
        args.layer = -1 if args.layer is None else args.layer
        args.head = args.head or 0
        args.kind = args.kind or "cross"
        return _show_heads(args, run, out, png)
    print(f"{args.text} -> {out}\n")
    read = run.task.normalize(args.text)  # what the model read: one column per character
    print(render_weights(weights, recipe.output_labels(out, weights), list(read)))
    path = save_heatmap(weights, read, recipe.output_labels(out, weights), png, title=args.text)
    print(f"\nheatmap written to {path}")
    return 0


def cmd_demo(args) -> int:
    started = time.perf_counter()
    print("Training a character-level BiGRU encoder-decoder with Bahdanau attention to read")
    print("dates in 7 locales and write them as ISO 8601 (YYYY-MM-DD).\n")
    # stop early only when held-out exact match is perfect: there is nothing left to gain
    run = recipe.train(
        "dates",
        out=args.out,
        threads=args.threads,
        epochs=args.epochs,
        seed=args.seed,
        patience=args.epochs,
        target=1.0,
        overwrite=True,  # the demo's own directory: each demo replaces the last
    )
    m = run.config["metrics"]  # the held-out evaluation of the best epoch, as saved
    print(f"\nheld-out: {m['n']} dates, exact match {m['exact_match']:.2%}, "
          f"character accuracy {m['char_accuracy']:.2%}\n")  # fmt: skip
    examples = [t for t in DEMO_INPUTS if not run.task.input_problem(t)]
    examples += [s for s, _ in run.held_out.pairs[:4]]
    results = run.task.predict(run.model, examples)
    columns = max(width(t) for t in examples)
    print(f"{ljust('input', columns)}  prediction")
    out_dir = Path(args.out)
    for i, (text, (out, weights)) in enumerate(zip(examples, results, strict=True)):
        print(f"{ljust(text, columns)}  {out}")
        save_heatmap(weights, run.task.normalize(text), recipe.output_labels(out, weights),
                     out_dir / f"example_{i:02d}.png",
                     title=text)  # fmt: skip
    text, (out, weights) = examples[0], results[0]
    print(f"\nwhere each output character looked, for {text!r}:\n")
    print(
        render_weights(weights, recipe.output_labels(out, weights), list(run.task.normalize(text)))
    )
    print(f"\nheatmaps in {out_dir}/example_*.png; checkpoint in {out_dir} "
          f"({time.perf_counter() - started:.0f}s)")  # fmt: skip
    print(f"try: attnkit predict --checkpoint {out_dir} '4 July 1976'")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a seq2seq attention model")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("--data", type=path, help="pairs to score, TSV, CSV or JSON (default: the "
                   "held-out split); prices: a CSV of bars or a series name")  # fmt: skip
    p.add_argument("--beam", type=positive_int, default=1, help="translation: beam width")
    p.add_argument("--save", type=path, help="translation: write source.txt, reference.txt and "
                   "hypothesis.txt (one verse per line) into this directory")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="predict with a checkpoint")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("text", nargs="*")
    p.add_argument("--data", type=path, help="prices: the bars to predict, a CSV file or series "
                   "name (default: the checkpoint's)")  # fmt: skip
    p.add_argument("--last", type=positive_int, help="prices: show the last N bars only "
                   "(default: 10)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=path, help="write one heatmap PNG per input into this directory")
    p.add_argument("--beam", type=positive_int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("show", help="draw where the model looked, as PNG and in the terminal")
    p.add_argument("--checkpoint", required=True, type=path)
    p.add_argument("text")
    p.add_argument("--out", type=path, help="PNG path (default attention.png)")
    p.add_argument("--kind", choices=sorted(KINDS), help="Transformer: which attention "
                   "(default cross)")  # fmt: skip
    p.add_argument("--layer", type=int, help="Transformer: the layer whose heads to draw "
                   "(default -1, the last)")  # fmt: skip
    p.add_argument("--head", type=count, help="Transformer: the head shown in the terminal "
                   "(default 0)")  # fmt: skip
    p.add_argument("--beam", type=positive_int, default=1, help="captioner: beam width "
                   "(1 = greedy)")  # fmt: skip
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("demo", help="train the dates model and show what it looks at")
    p.add_argument("--out", default="runs/demo", type=path)
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--threads", type=positive_int)
    p.set_defaults(func=cmd_demo)
