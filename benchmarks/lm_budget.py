"""Character language models on the World English Bible under one CPU budget each.

Trains the decoder-only Transformer (attnkit defaults unless given) and a character LSTM
whose hidden size is chosen to match the Transformer's parameter count, each for
``--minutes`` of wall time on ``--threads`` threads (evaluation included; ``--models`` runs
one of them, so two processes can train both side by side under the same load), on the default
corpus split by book. Prints validation and test bits per character, parameters, training
seconds and a sample of each model.

    python benchmarks/lm_budget.py --minutes 10 --threads 2 --out runs/lm_budget
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from attnkit.models import CharLSTM, CharLSTMConfig, DecoderOnly, DecoderOnlyConfig
from attnkit.recipes import lm
from attnkit.tasks.lm import default_corpus


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_hidden(target: int, vocab: int, layers: int, embed: int) -> int:
    """The LSTM hidden size whose parameter count is closest to ``target``."""

    def count(h: int) -> int:
        return _params(
            CharLSTM(CharLSTMConfig(vocab, embed_dim=embed, hidden_dim=h, layers=layers))
        )

    return min(range(16, 2049, 8), key=lambda h: abs(count(h) - target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=DecoderOnlyConfig.d_model)
    parser.add_argument("--layers", type=int, default=DecoderOnlyConfig.layers)
    parser.add_argument("--lstm-layers", type=int, default=CharLSTMConfig.layers)
    parser.add_argument("--context", type=int, default=lm.CONTEXT)
    parser.add_argument("--out", default="runs/lm_budget")
    parser.add_argument("--prompt", default="In the beginning")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["decoder-only", "lstm-lm"],
        choices=["decoder-only", "lstm-lm"],
        help="run one per process to give both the same machine load",
    )
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    corpus = default_corpus()
    vocab = len(lm.LMTask.from_text(corpus.train).vocab)
    tf_params = _params(
        DecoderOnly(DecoderOnlyConfig(vocab, d_model=opts.d_model, layers=opts.layers))
    )
    hidden = matched_hidden(tf_params, vocab, opts.lstm_layers, CharLSTMConfig.embed_dim)
    runs = {
        "decoder-only": {"d_model": opts.d_model, "layers": opts.layers},
        "lstm-lm": {"hidden_dim": hidden, "layers": opts.lstm_layers},
    }
    results = {}
    for name, settings in runs.items():
        if name not in opts.models:
            continue
        out = Path(opts.out) / name
        started = time.perf_counter()
        run = lm.train(
            out=out,
            model=name,
            context=opts.context,
            overwrite=True,
            corpus=corpus,
            time_limit=opts.minutes * 60,
            epochs=1000,
            patience=1000,
            progress=False,
            **settings,
        )
        seconds = time.perf_counter() - started
        history = run.config["history"]
        test = run.task.evaluate(run.model, run.task.dataset(corpus.test))["bits_per_char"]
        sample = lm.generate(run, opts.prompt, 300, temperature=0.8, seed=0)
        results[name] = {
            "params": _params(run.model),
            "valid_bpc": run.config["metrics"]["bits_per_char"],
            "test_bpc": test,
            "epochs": len(history),
            "train_seconds": history[-1]["seconds"],
            "wall_seconds": seconds,
            "sample": opts.prompt + sample,
            **settings,
        }
    print(
        f"{opts.minutes:g} minutes each, {opts.threads} thread(s), context {opts.context}, "
        f"{len(corpus.train):,} training / {len(corpus.test):,} test characters "
        f"(test books {', '.join(corpus.source['test_books'])})"
    )
    print(f"{'model':<14}{'params':>10}{'valid bpc':>11}{'test bpc':>10}{'seconds':>9}")
    for name, r in results.items():
        print(
            f"{name:<14}{r['params']:>10,}{r['valid_bpc']:>11.3f}{r['test_bpc']:>10.3f}"
            f"{r['train_seconds']:>9.0f}"
        )
    for name, r in results.items():
        print(f"\n{name} sample (temperature 0.8):\n{r['sample']}")
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    (Path(opts.out) / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
