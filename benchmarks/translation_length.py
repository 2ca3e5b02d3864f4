"""Translation quality by source length: an RNN without attention, an RNN with additive
attention and a Transformer, trained with the same CPU budget (the shape of Bahdanau et al.
2014, Figure 2).

Each model trains for ``--minutes`` with ``--train-threads`` threads, ``--jobs`` of them at a
time (the default, one at a time on two threads, gives each the whole machine of two cores;
``--jobs 3 --train-threads 1`` trains them side by side with equal shares), on the
English-Spanish verse pairs; then each translates the held-out test books (greedily, or with a
beam of ``--beam``) and the verses are grouped by source length in words. Prints BLEU and chrF
(sacreBLEU, with signatures) overall and per group; the words written per reference word per
group (below 1: stopping early; above: repeating); and, for each attention model, a paired
bootstrap interval of its gain (chrF, and BLEU as in Bahdanau et al.'s figure) over the RNN
without attention on long verses minus its gain on shorter ones. Writes ``results.json`` and
``length.png`` into ``--out`` (``results.beam4.json`` and so on with ``--beam 4``; a beam of W
decodes W hypotheses of each verse in its batch).
Existing checkpoints in ``--out`` are reused (delete them to retrain).

    python benchmarks/translation_length.py --minutes 30 --train-threads 2 --out runs/translation
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from attnkit.recipes import translate
from attnkit.tasks.translation import corpus_scores

MODELS = {  # name: attnkit train arguments
    "rnn, no attention": ["--model", "rnn", "--attention", "none"],
    "rnn, additive attention": ["--model", "rnn", "--attention", "additive"],
    "transformer": ["--model", "transformer"],
}
BUCKETS = (0, 10, 20, 30, 40, 50, 60)  # source words: [0, 10), [10, 20), ... [60, inf)
GROUPS = (0, 20, 40)  # coarser, for the gaps: short (< 20 words), 20-39, long (40 and more)
BASELINE = "rnn, no attention"
RESAMPLES = 1000  # bootstrap resamples of the verses for the gain intervals


def _dir(out: Path, name: str) -> Path:
    return out / name.replace(", ", "_").replace(" ", "-")


def train_all(
    out: Path,
    minutes: float,
    direction: str,
    jobs: int,
    threads: int,
    extra: tuple[str, ...] | list[str] = (),
) -> None:
    """Train the models that have no checkpoint in ``out`` yet, ``jobs`` at a time, each with
    the attnkit train arguments ``extra`` too."""
    todo = []
    for name, args in MODELS.items():
        where = _dir(out, name)
        if (where / "model.safetensors").exists():
            print(f"{name}: reusing {where}")
            continue
        cmd = [
            sys.executable,
            "-m",
            "attnkit.cli",
            "train",
            "translate",
            *args,
            "--direction",
            direction,
            "--minutes",
            str(minutes),
            "--threads",
            str(threads),
            "--out",
            str(where),
            "--overwrite",
            *extra,
        ]
        todo.append((name, cmd, out / f"{where.name}.log"))
    running: list[tuple[str, subprocess.Popen]] = []

    def wait_one() -> None:
        name, proc = running.pop(0)
        if proc.wait() != 0:
            raise SystemExit(f"{name}: training failed (see its log)")

    for name, cmd, log in todo:
        if len(running) == jobs:
            wait_one()
        with log.open("w") as handle:
            running.append((name, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)))
        print(f"{name}: training for {minutes:g} minutes on {threads} thread(s), log in {log}")
    while running:
        wait_one()


def bucket_of(words: int, bounds: tuple[int, ...] = BUCKETS) -> str:
    low = [b for b in bounds if b <= words][-1]
    return f"{low}+" if low == bounds[-1] else f"{low}-{bounds[bounds.index(low) + 1] - 1}"


def rows_by_length(pairs, bounds: tuple[int, ...]) -> dict[str, list[int]]:
    """The indices of the verses in each group of source words (``bounds``: each group's
    low), the groups from shortest to longest."""
    groups: dict[str, list[int]] = {}
    for i, (src, _) in enumerate(pairs):
        groups.setdefault(bucket_of(len(src.split()), bounds), []).append(i)
    return {key: groups[key] for key in sorted(groups, key=_low)}


def by_length(pairs, outputs, bounds: tuple[int, ...]) -> dict[str, dict]:
    """Corpus scores of the verses grouped by source words (``bounds``: each group's low)."""
    scored = {}
    for key, rows in rows_by_length(pairs, bounds).items():
        hyps, refs = [outputs[i] for i in rows], [pairs[i][1] for i in rows]
        scores = corpus_scores(hyps, refs)
        scored[key] = {
            "bleu": scores["bleu"],
            "chrf": scores["chrf"],
            "n": scores["n"],
            "ratio": _ratio(hyps, refs),
        }
    return scored


def _ratio(hyps: list[str], refs: list[str]) -> float:
    """Words written per reference word: below 1 the model stops early, above it repeats."""
    return sum(len(h.split()) for h in hyps) / max(1, sum(len(r.split()) for r in refs))


def gap_intervals(
    pairs,
    outputs: dict[str, list[str]],
    resamples: int = RESAMPLES,
    seed: int = 0,
    metric: str = "chrf",
) -> dict[str, dict[str, dict[str, float]]]:
    """How sure the ordering of gains is: for each model but the baseline, its gain in
    ``metric`` ("chrf" or "bleu") over the baseline on the longest group (of ``GROUPS``) minus
    its gain on each shorter group, as the median and the 95% interval over ``resamples``
    bootstrap resamples of each group's verses (paired bootstrap, Koehn 2004: both models
    scored on the same resampled verses). An interval above 0 means the gain is larger on long
    verses beyond resampling noise."""
    from sacrebleu.metrics import BLEU, CHRF

    # corpus scores from summed per-verse statistics, as sacrebleu computes them
    scorer = {"chrf": CHRF, "bleu": BLEU}[metric]()
    refs = [[ref for _, ref in pairs]]
    stats = {
        name: np.asarray(scorer._extract_corpus_statistics(hyps, refs), dtype=np.float64)
        for name, hyps in outputs.items()
    }

    def score(rows: np.ndarray) -> float:
        return scorer._compute_score_from_stats(rows.sum(0).tolist()).score

    groups = rows_by_length(pairs, GROUPS)
    *shorter, longest = groups
    rng = np.random.default_rng(seed)
    intervals = {}
    for name in outputs:
        if name == BASELINE:
            continue
        diffs: dict[str, list[float]] = {k: [] for k in shorter}
        for _ in range(resamples):
            gain = {}
            for k, rows in groups.items():
                drawn = rng.choice(rows, len(rows))
                gain[k] = score(stats[name][drawn]) - score(stats[BASELINE][drawn])
            for k in shorter:
                diffs[k].append(gain[longest] - gain[k])
        intervals[name] = {}
        for k in shorter:
            low, median, high = np.percentile(diffs[k], [2.5, 50, 97.5]).tolist()
            intervals[name][f"{longest} minus {k}"] = {"low": low, "median": median, "high": high}
    return intervals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/translation"))
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per model")
    parser.add_argument("--direction", default="en-es", choices=("en-es", "es-en"))
    parser.add_argument("--train-threads", type=int, default=2, help="threads per training")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time")
    parser.add_argument("--threads", type=int, default=2, help="threads for the evaluation")
    parser.add_argument(
        "--joined",
        help=f"pairs of two joined verses per training verse (default {translate.JOINED})",
    )
    parser.add_argument(
        "--batch-by",
        choices=translate.BATCH_CHOICES,
        help="training batches "
        f"of about equal subwords or of equal verses (default "
        f"{translate.BATCH_BY})",
    )
    parser.add_argument(
        "--beam", type=int, default=1, help="beam width of the test decoding (default 1: greedy)"
    )
    opts = parser.parse_args()
    tag = "" if opts.beam == 1 else f".beam{opts.beam}"
    opts.out.mkdir(parents=True, exist_ok=True)
    extra = [] if opts.joined is None else ["--joined", opts.joined]
    extra += [] if opts.batch_by is None else ["--batch-by", opts.batch_by]
    train_all(opts.out, opts.minutes, opts.direction, opts.jobs, opts.train_threads, extra)
    torch.set_num_threads(opts.threads)

    results, written = {}, {}
    pairs = None
    for name in MODELS:
        run = translate.load(_dir(opts.out, name))
        pairs = pairs or translate.held_out(run)
        scores, outputs = translate.evaluate(run, pairs, beam=opts.beam)
        written[name] = outputs
        results[name] = {
            "overall": scores,
            "by_length": by_length(pairs, outputs, BUCKETS),
            "by_group": by_length(pairs, outputs, GROUPS),
            "parameters": sum(p.numel() for p in run.model.parameters()),
            "epoch": run.config.get("epoch"),
        }
        (opts.out / f"{_dir(opts.out, name).name}{tag}.hyp.txt").write_text(
            "".join(h + "\n" for h in outputs), encoding="utf-8"
        )
    for name, these in gap_intervals(pairs, written).items():
        results[name]["gain_differences"] = these
    for name, these in gap_intervals(pairs, written, metric="bleu").items():
        results[name]["gain_differences_bleu"] = these
    (opts.out / f"results{tag}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    _print(results)
    budget = f"{opts.minutes:g} minutes on {opts.train_threads} thread(s) each"
    decoding = "greedy" if opts.beam == 1 else f"beam {opts.beam}"
    _plot(results, opts.out / f"length{tag}.png", f"{opts.direction}, {budget}, {decoding}")


def _low(bucket: str) -> int:
    return int(bucket.rstrip("+").split("-")[0])


def _print(results: dict) -> None:
    first = next(iter(results.values()))
    print(f"\n{'model':<26}{'params':>11}{'BLEU':>8}{'chrF':>8}")
    for name, r in results.items():
        o = r["overall"]
        print(f"{name:<26}{r['parameters']:>11,}{o['bleu']:>8.2f}{o['chrf']:>8.2f}")
    print(f"BLEU: {first['overall']['bleu_signature']}")
    print(f"chrF: {first['overall']['chrf_signature']}")
    buckets = list(first["by_length"])
    print(
        "\nchrF (BLEU) by source length in words; verses: "
        + ", ".join(f"{b}: {first['by_length'][b]['n']}" for b in buckets)
    )
    print(f"{'model':<26}" + "".join(f"{b:>14}" for b in buckets))
    for name, r in results.items():
        cells = [
            f"{r['by_length'][b]['chrf']:.1f} ({r['by_length'][b]['bleu']:.1f})" for b in buckets
        ]
        print(f"{name:<26}" + "".join(f"{c:>14}" for c in cells))
    if BASELINE not in results:
        return
    base = results[BASELINE]["by_group"]
    groups = list(base)
    for metric, label, key in (
        ("chrf", "chrF", "gain_differences"),
        ("bleu", "BLEU", "gain_differences_bleu"),
    ):
        print(
            f"\n{label} above {BASELINE}, by source words; verses: "
            + ", ".join(f"{g}: {base[g]['n']}" for g in groups)
        )
        print(f"{'model':<26}" + "".join(f"{g:>10}" for g in groups) + f"{'overall':>10}")
        for name, r in results.items():
            if name != BASELINE:
                gaps = [r["by_group"][g][metric] - base[g][metric] for g in groups]
                whole = r["overall"][metric] - results[BASELINE]["overall"][metric]
                print(f"{name:<26}" + "".join(f"{x:>+10.2f}" for x in [*gaps, whole]))
        print(
            f"{label} gain on the longest group minus gain on a shorter one: median [95% "
            f"interval] over {RESAMPLES:,} paired bootstrap resamples of the verses"
        )
        for name, r in results.items():
            for which, q in r.get(key, {}).items():
                print(
                    f"{name:<26}{which:<18}{q['median']:>+7.2f} [{q['low']:+.2f}, {q['high']:+.2f}]"
                )
    print("\nwords written per reference word, by source words")
    print(f"{'model':<26}" + "".join(f"{g:>10}" for g in groups))
    for name, r in results.items():
        print(f"{name:<26}" + "".join(f"{r['by_group'][g]['ratio']:>10.2f}" for g in groups))


def _plot(results: dict, path: Path, what: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for metric, ax in zip(("chrf", "bleu"), axes, strict=True):
        for name, r in results.items():
            buckets = list(r["by_length"])
            ax.plot(
                range(len(buckets)),
                [r["by_length"][b][metric] for b in buckets],
                marker="o",
                label=name,
            )
            ax.set_xticks(range(len(buckets)), buckets)
        ax.set_xlabel("source length (words)")
        ax.set_ylabel("chrF" if metric == "chrf" else "BLEU")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"held-out test books by source length ({what})")
    fig.savefig(path, dpi=120)
    print(f"\nplot written to {path}")


if __name__ == "__main__":
    main()
