"""attnkit against the classic Keras attention tutorial, on data shaped like the tutorial's.

Generates ``--n`` times written in the tutorial's families (its own grammar is not copied:
this is a generator of the same kinds of strings, e.g. "t11:36", "23 min after 20 p.m.",
"six hours and fifty five am", "ten o'clock twenty a.m", "thirty four after eight before
noon", "quarter before eleven p.m"), saves them in the tutorial's JSON format, splits 80/20 with
attnkit's own split, then times, on the same machine and threads:

- ``attnkit train --data FILE.json`` with every setting left to its defaults;
- the tutorial's Keras model (benchmarks/keras/tutorial_model.py) on the same training pairs,
  in its own virtual environment (Keras 3 on the torch backend, created on first use in
  ``--venv``; Keras is never a dependency of attnkit);

and prints both wall times and held-out exact matches.

    python benchmarks/tutorial_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from attnkit.tasks import split
from attnkit.tasks.times import number_words

HERE = Path(__file__).resolve().parent
AM, PM = ("am", "a.m.", "a.m"), ("pm", "p.m.", "p.m")


def tutorial_like(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, "HH:MM") pairs in the tutorial's families, lower case, one reading each."""
    rng = random.Random(seed)
    pairs, seen = [], {}
    while len(pairs) < n:
        h, m = rng.randrange(24), rng.randrange(60)
        h12, pm = h % 12 or 12, h >= 12
        mark = rng.choice(PM if pm else AM)
        word = rng.random() < 0.5
        hour = number_words(h12) if word else str(h12)
        kind = rng.randrange(7)
        if kind == 0:
            text = f"{rng.choice(['t', ''])}{h}{rng.choice(':.')}{m:02d}"
        elif kind == 1:
            space = rng.choice(["", " "])
            text = f"{rng.choice(['t', ''])}{h12}{rng.choice(':.')}{m:02d}{space}{mark}"
        elif kind == 2 and m:
            mins = number_words(m) if rng.random() < 0.5 else str(m)
            text = f"{mins}{rng.choice([' min', ''])} after {hour} {mark}"
        elif kind == 3 and m:
            ref = (h + 1) % 24
            r12 = ref % 12 or 12
            mins = number_words(60 - m) if rng.random() < 0.5 else str(60 - m)
            rmark = rng.choice(PM if ref >= 12 else AM)
            text = f"{mins}{rng.choice([' min', ''])} before {r12} {rmark}"
        elif kind == 4:
            text = f"{number_words(h12)} hours and {number_words(m)} {mark}"
        elif kind == 5:
            text = f"{number_words(h12)} o'clock {number_words(m)} {mark}"
        elif kind == 6 and h < 12 and m:
            text = f"{number_words(m)} after {hour} before noon"
        else:
            continue
        target = f"{h:02d}:{m:02d}"
        if seen.setdefault(text, target) == target:
            pairs.append((text, target))
    return pairs


def keras_python(venv: Path) -> Path:
    """The benchmark environment's python, created with Keras (and the tested torch) first."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "-c",
                str(HERE.parent / "constraints.txt"),
                "-r",
                str(HERE / "keras" / "requirements.txt"),
                "torch",
                "numpy",
            ],
            check=True,
        )
    return python


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{cmd[:4]} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=HERE / ".keras-venv")
    parser.add_argument("--skip-keras", action="store_true")
    opts = parser.parse_args()

    pairs = tutorial_like(opts.n, opts.seed)
    train, held = split(pairs, 0.2, 0)  # the split attnkit train makes (seed 0, 20%)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, data in (("all", pairs), ("train", train), ("held", held)):
            (tmp / f"{name}.json").write_text(json.dumps([list(p) for p in data]))
        ours, _ = timed(
            [
                sys.executable,
                "-m",
                "attnkit.cli",
                "train",
                "--data",
                str(tmp / "all.json"),
                "--out",
                str(tmp / "ckpt"),
                "--threads",
                str(opts.threads),
            ]
        )
        metrics = json.loads((tmp / "ckpt" / "config.json").read_text())["metrics"]
        print(f"{len(train)} training and {len(held)} held-out pairs, {opts.threads} threads")
        print(
            f"attnkit (defaults)  {ours:7.1f} s   held-out exact match "
            f"{metrics['exact_match']:.4f}",
            flush=True,
        )
        if opts.skip_keras:
            return
        python = keras_python(opts.venv)
        theirs, out = timed(
            [
                str(python),
                str(HERE / "keras" / "tutorial_model.py"),
                str(tmp / "train.json"),
                str(tmp / "held.json"),
                str(opts.threads),
            ]
        )
        keras_em = json.loads(out.strip().splitlines()[-1])["exact_match"]
        print(f"keras tutorial      {theirs:7.1f} s   held-out exact match {keras_em:.4f}")
        print(f"attnkit is {theirs / ours:.1f}x faster")


if __name__ == "__main__":
    main()
