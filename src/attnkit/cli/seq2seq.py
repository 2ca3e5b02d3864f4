"""``attnkit train / eval / predict / show / demo`` for the string-to-string models."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ..models import ATTENTIONS, Seq2Seq, Seq2SeqConfig
from ..tasks import CharVocab, PairDataset, char_accuracy, exact_match, generate, read_tsv, split
from ..train import TrainConfig, fit, load_model, predict
from ..train.checkpoint import read_config
from ..train.loop import decode_batches
from ..viz import render_weights, save_heatmap
from .errors import UserError

DEFAULT_N = {"dates": 30_000, "times": 10_000}
HELD_OUT = 0.2
MODEL = dict(embed_dim=32, hidden_dim=96, attn_dim=48, dropout=0.0)
# what train uses where the user gives nothing: the cosine schedule's length (also the most
# epochs), the decoder state size and the attention, and where a task differs
TRAIN_DEFAULTS = {"epochs": 20, "hidden": MODEL["hidden_dim"], "attention": "additive"}
TASK_DEFAULTS = {"times": {"epochs": 8, "hidden": 128}}
DEMO_INPUTS = [
    "Wednesday, September 14, 1994", "14.09.94", "3 mars 2021", "1 января 2000 г.",
    "2021年3月14日", "sábado, 4 de julio de 1998", "5. Mai 1999", "DEC 25, 2049", "7/4/76",
]  # fmt: skip


def _set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", nargs="?", choices=sorted(DEFAULT_N), help="a generated task")
    p.add_argument("--data", help="a TSV file of input<TAB>target pairs instead of a task")
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--attention", choices=ATTENTIONS, help="(default: additive)")
    p.add_argument("--epochs", type=int, help="the learning-rate schedule's length and the most "
                   "epochs (default: 8 for times, 20 otherwise)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, help="generated pairs (default: 30000 dates, 10000 times)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--hidden", type=int, help="decoder state size; the encoder has half per "
                   "direction (default: 128 for times, 96 otherwise)")  # fmt: skip
    p.add_argument("--target", type=float, help="stop at this held-out exact match (0..1)")
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


def train_args(argv: list[str]) -> argparse.Namespace:
    """The ``train`` command's arguments, defaults included, as parsed from ``argv``."""
    parser = argparse.ArgumentParser(prog="attnkit train")
    add_train_args(parser)
    return parser.parse_args(argv)


def _load_pairs(args) -> tuple[list[tuple[str, str]], dict]:
    if (args.task is None) == (args.data is None):
        raise UserError("give a task (dates or times) or --data FILE.tsv, not both or neither")
    if args.data:
        return read_tsv(args.data), {"task": None, "data": str(args.data)}
    n = args.n or DEFAULT_N[args.task]
    if n < 10:
        raise UserError(f"--n must be at least 10, got {n}")
    return generate(args.task, n, args.seed), {"task": args.task, "n": n}


def _fill_defaults(args) -> None:
    """Epochs, model size and attention the user left out, from the task's defaults."""
    for name, value in {**TRAIN_DEFAULTS, **TASK_DEFAULTS.get(args.task, {})}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.epochs < 1 or args.hidden < 2 or args.hidden % 2:
        raise UserError("--epochs must be at least 1 and --hidden an even number of at least 2")


def _resume_settings(args) -> None:
    """On --resume, the model and schedule of the run being continued, unless given."""
    saved = read_config(args.out)
    if saved is None:
        return  # no finished epoch to continue: the run starts afresh
    try:
        hidden, attention = saved["model"]["hidden_dim"], saved["model"]["attention"]
        epochs = saved["train_config"]["epochs"]
    except (KeyError, TypeError):
        raise UserError(f"{args.out}/config.json lacks the model settings to resume") from None
    for name, value in (("hidden", hidden), ("attention", attention), ("epochs", epochs)):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if (args.hidden, args.attention) != (hidden, attention):
        raise UserError(
            f"{args.out} holds a model with --hidden {hidden} --attention {attention}; "
            "resume it with those, or leave them out"
        )


def train_model(args, log=print) -> tuple[Seq2Seq, PairDataset, dict]:
    _set_threads(args.threads)
    if args.resume:
        _resume_settings(args)
    _fill_defaults(args)
    torch.manual_seed(args.seed)
    pairs, source = _load_pairs(args)
    train_pairs, held = split(pairs, HELD_OUT, args.seed)
    src_vocab = CharVocab.from_texts(s for s, _ in pairs)
    tgt_vocab = CharVocab.from_texts(t for _, t in pairs)
    longest_in = max(len(s) for s, _ in pairs)
    longest_out = max(len(t) for _, t in pairs)
    cfg = Seq2SeqConfig(
        len(src_vocab), len(tgt_vocab), attention=args.attention,
        **{**MODEL, "hidden_dim": args.hidden, "attn_dim": args.hidden // 2},
        max_output_len=2 * longest_out + 2,
    )  # fmt: skip
    model = Seq2Seq(cfg)
    meta = {**source, "seed": args.seed, "held_out": HELD_OUT,
            "max_input_len": 2 * longest_in}  # fmt: skip
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       target=args.target, patience=args.patience, seed=args.seed)  # fmt: skip
    held_ds = PairDataset(held, src_vocab, tgt_vocab)
    log(f"{len(train_pairs)} training pairs, {len(held)} held out; attention {args.attention}")
    state = fit(model, PairDataset(train_pairs, src_vocab, tgt_vocab), held_ds, tcfg, args.out,
                meta, resume=args.resume, log=log)  # fmt: skip
    best, _, _, config = load_model(args.out)
    return best, held_ds, {**config, "history": state["history"]}


def cmd_train(args) -> int:
    _, _, config = train_model(args)
    m = config["metrics"]
    print(
        f"best held-out exact match {m['exact_match']:.4f}, character accuracy "
        f"{m['char_accuracy']:.4f} (epoch {config['epoch']}); checkpoint in {args.out}"
    )
    return 0


def _input_problem(text: str, src_vocab: CharVocab, config: dict) -> str | None:
    """Why the model cannot read ``text`` (empty, too long, unknown characters), or None."""
    if not text:
        return "empty input"
    limit = config.get("max_input_len", 200)
    if len(text) > limit:
        return f"input of {len(text)} characters is longer than this model's {limit}"
    unknown = src_vocab.unknown(text)
    if unknown:
        return f"input {text!r} has characters the model never saw: {', '.join(map(repr, unknown))}"
    return None


def _check_input(text: str, src_vocab: CharVocab, config: dict) -> None:
    problem = _input_problem(text, src_vocab, config)
    if problem:
        raise UserError(problem)


def cmd_eval(args) -> int:
    _set_threads(args.threads)
    model, src_vocab, tgt_vocab, config = load_model(args.checkpoint)
    if args.data:
        pairs = read_tsv(args.data)
    elif config.get("task"):
        all_pairs = generate(config["task"], config["n"], config["seed"])
        _, pairs = split(all_pairs, config["held_out"], config["seed"])
    else:
        raise UserError("this checkpoint was trained on a file: pass --data FILE.tsv")
    ok, bad = [], []
    for pair in pairs:
        (bad if _input_problem(pair[0], src_vocab, config) else ok).append(pair)
    skipped = len(bad)
    outputs = []
    if ok:
        ds = PairDataset(ok, src_vocab, _extend(tgt_vocab, ok))
        outputs = [tgt_vocab.decode(ids) for ids in decode_batches(model, ds)]
    outputs += [""] * skipped  # unreadable rows count as wrong
    targets = [t for _, t in ok] + [t for _, t in bad]
    result = {
        "exact_match": exact_match(outputs, targets),
        "char_accuracy": char_accuracy(outputs, targets),
        "n": len(pairs),
        "unreadable": skipped,
    }
    if skipped:
        print(f"attnkit eval: {skipped} of {len(pairs)} inputs have characters outside the "
              "vocabulary or are empty/too long; counted as wrong", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'examples':<16}{result['n']}")
        print(f"{'exact match':<16}{result['exact_match']:.4f}")
        print(f"{'char accuracy':<16}{result['char_accuracy']:.4f}")
        if skipped:
            print(f"{'unreadable':<16}{skipped}")
    return 0


def _extend(vocab: CharVocab, pairs) -> CharVocab:
    """Targets may hold characters the model cannot write; encode them for scoring only."""
    extra = {c for _, t in pairs for c in t} - set(vocab.stoi)
    return CharVocab(vocab.to_list() + sorted(extra)) if extra else vocab


def cmd_predict(args) -> int:
    _set_threads(args.threads)
    model, src_vocab, tgt_vocab, config = load_model(args.checkpoint)
    for text in args.text:
        _check_input(text, src_vocab, config)
    results = predict(model, src_vocab, tgt_vocab, args.text, beam=args.beam)
    for i, (text, (out, weights)) in enumerate(zip(args.text, results, strict=True)):
        if args.json:
            rows = [[round(float(x), 6) for x in row] for row in weights]
            print(json.dumps({"input": text, "output": out, "weights": rows}, ensure_ascii=False))
        else:
            print(f"{text}\t{out}")
        if args.plot:
            save_heatmap(weights, text, out + "⏎", Path(args.plot) / f"{i:03d}.png", title=text)
    return 0


def cmd_show(args) -> int:
    model, src_vocab, tgt_vocab, config = load_model(args.checkpoint)
    _check_input(args.text, src_vocab, config)
    (out, weights), = predict(model, src_vocab, tgt_vocab, [args.text])  # fmt: skip
    print(f"{args.text} -> {out}\n")
    print(render_weights(weights, list(out) + ["⏎"], list(args.text)))
    path = save_heatmap(weights, args.text, out + "⏎", args.out or "attention.png", title=args.text)
    print(f"\nheatmap written to {path}")
    return 0


def cmd_demo(args) -> int:
    started = time.perf_counter()
    ns = train_args(["dates", "--out", args.out, "--epochs", str(args.epochs), "--seed",
                     str(args.seed), "--patience", str(args.epochs)])  # fmt: skip
    ns.threads = args.threads
    print("Training a character-level BiGRU encoder-decoder with Bahdanau attention to read")
    print("dates in 7 locales and write them as ISO 8601 (YYYY-MM-DD).\n")
    model, held_ds, config = train_model(ns)
    m = config["metrics"]  # the held-out evaluation of the best epoch, as saved
    print(f"\nheld-out: {m['n']} dates, exact match {m['exact_match']:.2%}, "
          f"character accuracy {m['char_accuracy']:.2%}\n")  # fmt: skip
    src_vocab, tgt_vocab = held_ds.src_vocab, held_ds.tgt_vocab
    examples = [t for t in DEMO_INPUTS if not src_vocab.unknown(t)] + [
        s for s, _ in held_ds.pairs[:4]
    ]
    results = predict(model, src_vocab, tgt_vocab, examples)
    width = max(len(t) for t in examples)
    print(f"{'input':<{width}}  prediction")
    out_dir = Path(args.out)
    for i, (text, (out, weights)) in enumerate(zip(examples, results, strict=True)):
        print(f"{text:<{width}}  {out}")
        save_heatmap(weights, text, out + "⏎", out_dir / f"example_{i:02d}.png", title=text)
    text, (out, weights) = examples[0], results[0]
    print(f"\nwhere each output character looked, for {text!r}:\n")
    print(render_weights(weights, list(out) + ["⏎"], list(text)))
    print(f"\nheatmaps in {out_dir}/example_*.png; checkpoint in {out_dir} "
          f"({time.perf_counter() - started:.0f}s)")  # fmt: skip
    print(f"try: attnkit predict --checkpoint {out_dir} '4 July 1976'")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="train a seq2seq attention model")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="TSV of input<TAB>target (default: the held-out split)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="predict with a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("text", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", help="write one heatmap PNG per input into this directory")
    p.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("show", help="draw where the model looked, as PNG and in the terminal")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("text")
    p.add_argument("--out", help="PNG path (default attention.png)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("demo", help="train the dates model and show what it looks at")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_demo)
