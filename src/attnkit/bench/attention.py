"""Speed and peak memory of every attention kernel against torch SDPA and a naive reference.

For each score (scaled_dot, additive, causal linear), each path and each T, the median of
``repeats`` timings at each thread count, and the peak extra memory of one call measured in a
fresh process (resident-set high-water mark, reset after the inputs exist). Quadratic paths are
skipped at sizes where they would need more than ``max_gib`` or take longer than ``budget_s``
per call (extrapolated from the previous size); the table says so.

    attnkit bench attention --sizes 128 512 2048 8192 32768 --threads 1 2
    python benchmarks/bench_kernels.py ...   (the same)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..functional import attend
from ..functional.scores import AdditiveParams, additive

GIB = 1 << 30


@dataclass(frozen=True)
class Shape:
    batch: int = 1
    heads: int = 8
    head_dim: int = 64
    hidden: int = 64  # additive score's hidden size
    backward: bool = False


def make_inputs(score: str, t: int, shape: Shape, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    grad = shape.backward
    if score == "additive":  # single-head, as AdditiveAttention: (B, T, D)
        dims = (shape.batch, t, shape.head_dim)
        h, d = shape.hidden, shape.head_dim
        params = AdditiveParams(
            torch.randn(h, d, generator=g) / d**0.5,
            torch.randn(h, d, generator=g) / d**0.5,
            torch.randn(h, generator=g) / h**0.5,
        )
    else:
        dims = (shape.batch, shape.heads, t, shape.head_dim)
        params = None
    q, k, v = (torch.randn(*dims, generator=g).requires_grad_(grad) for _ in range(3))
    return {"q": q, "k": k, "v": v, "params": params}


def naive_additive(q, k, v, p: AdditiveParams):
    """softmax(v^T tanh(W q + U k)) v over a materialised (..., Tq, Tk, hidden) tensor."""
    return torch.softmax(additive(q, k, p), dim=-1) @ v


def _naive_dot(q, k, v):
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.softmax(s, dim=-1) @ v


def paths(score: str) -> dict[str, Callable[[dict], torch.Tensor]]:
    """Name -> f(inputs) -> output, for one score."""
    if score == "scaled_dot":
        return {
            "torch sdpa": lambda x: F.scaled_dot_product_attention(x["q"], x["k"], x["v"]),
            "attend auto": lambda x: attend(x["q"], x["k"], x["v"]).context,
            "attend chunked": lambda x: attend(x["q"], x["k"], x["v"], impl="chunked").context,
            "naive": lambda x: _naive_dot(x["q"], x["k"], x["v"]),
        }
    if score == "additive":
        return {
            "attend auto": lambda x: (
                attend(x["q"], x["k"], x["v"], score="additive", score_params=x["params"]).context
            ),
            "naive": lambda x: naive_additive(x["q"], x["k"], x["v"], x["params"]),
        }
    if score == "linear_causal":
        return {
            "attend linear": lambda x: (
                attend(x["q"], x["k"], x["v"], score="linear", causal=True).context
            ),
            "torch sdpa causal": lambda x: F.scaled_dot_product_attention(
                x["q"], x["k"], x["v"], is_causal=True
            ),
        }
    raise ValueError(f"unknown score {score!r}")


SCORES = ("scaled_dot", "additive", "linear_causal")
_QUADRATIC_MEMORY = {"naive"}  # paths that hold (.., T, T[, hidden]) tensors


def estimated_bytes(score: str, path: str, t: int, shape: Shape) -> int:
    """What a materialising path needs at least (scores, and the hidden tensor for additive)."""
    if path not in _QUADRATIC_MEMORY:
        return 0
    if score == "additive":
        return 4 * shape.batch * t * t * shape.hidden * (2 if shape.backward else 1)
    return 4 * shape.batch * shape.heads * t * t * 2


def call(score: str, path: str, inputs: dict, backward: bool) -> None:
    out = paths(score)[path](inputs)
    if backward:
        out.sum().backward()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_path(score, path, inputs, backward, repeats) -> float:
    return median_seconds(lambda: call(score, path, inputs, backward), repeats)


def _rss_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure_peak_here(score: str, path: str, t: int, shape: Shape) -> int | None:
    """Peak extra resident memory of one call in this process, or None where unmeasurable."""
    inputs = make_inputs(score, t, shape)
    call(score, path, make_inputs(score, min(t, 64), shape), shape.backward)  # load libraries
    return peak_extra_bytes(lambda: call(score, path, inputs, shape.backward))


def peak_extra_bytes(fn: Callable[[], object]) -> int | None:
    """How far resident memory rose above its level before ``fn()`` while it ran (Linux: the
    high-water mark, reset through /proc/self/clear_refs), or None where unmeasurable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _rss_bytes("VmRSS")
    fn()
    peak = _rss_bytes("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0)


def measure_peak(score: str, path: str, t: int, shape: Shape, threads: int = 1) -> int | None:
    """``measure_peak_here`` in a fresh process, so earlier calls leave no cached memory."""
    cmd = [
        sys.executable,
        "-m",
        "attnkit.bench.attention",
        "--_peak",
        score,
        path,
        str(t),
        json.dumps(shape.__dict__),
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement failed: {proc.stderr[-1000:]}")
    value = json.loads(proc.stdout.strip().splitlines()[-1])
    return None if value is None else int(value)


def run(
    sizes,
    threads_list,
    scores,
    shape: Shape,
    repeats: int,
    budget_s: float,
    max_gib: float,
    memory: bool = True,
    log=print,
) -> list[dict]:
    rows = []
    for score in scores:
        for path in paths(score):
            last: dict[int, tuple[int, float]] = {}  # threads -> (T, seconds)
            for t in sizes:
                need = estimated_bytes(score, path, t, shape)
                row = {"score": score, "path": path, "T": t}
                if need > max_gib * GIB:
                    row["skipped"] = f"needs >= {need / GIB:.0f} GiB"
                    rows.append(row)
                    log(_fmt(row))
                    continue
                inputs = make_inputs(score, t, shape)
                for threads in threads_list:
                    if threads in last:
                        t_prev, s_prev = last[threads]
                        if s_prev * (t / t_prev) ** 2 > budget_s:
                            row[f"skipped_{threads}t"] = "over the time budget"
                            continue
                    torch.set_num_threads(threads)
                    secs = time_path(score, path, inputs, shape.backward, repeats)
                    row[f"median_s_{threads}t"] = secs
                    last[threads] = (t, secs)
                if memory and any(k.startswith("median") for k in row):
                    row["peak_bytes"] = measure_peak(score, path, t, shape)
                rows.append(row)
                log(_fmt(row))
    return rows


def _fmt(row: dict) -> str:
    parts = [f"{row['score']:<14}", f"{row['path']:<18}", f"T={row['T']:<6}"]
    for key, val in row.items():
        if key.startswith("median_s_"):
            parts.append(f"{key[9:]} {val * 1e3:>10.1f} ms")
        elif key == "peak_bytes" and val is not None:
            parts.append(f"peak {val / 2**20:>8.1f} MiB")
        elif key.startswith("skipped"):
            parts.append(f"({val})")
    return "  ".join(parts)


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    scores = sorted({r["score"] for r in rows})
    fig = Figure(figsize=(5 * len(scores), 8))
    axes = fig.subplots(2, len(scores), squeeze=False)
    for col, score in enumerate(scores):
        mine = [r for r in rows if r["score"] == score]
        for name in dict.fromkeys(r["path"] for r in mine):
            pts = [r for r in mine if r["path"] == name]
            for key in sorted({k for r in pts for k in r if k.startswith("median_s_")}):
                xs = [r["T"] for r in pts if key in r]
                axes[0][col].plot(
                    xs, [r[key] for r in pts if key in r], marker="o", label=f"{name} ({key[9:]})"
                )
            xs = [r["T"] for r in pts if r.get("peak_bytes")]
            axes[1][col].plot(
                xs,
                [r["peak_bytes"] / 2**20 for r in pts if r.get("peak_bytes")],
                marker="o",
                label=name,
            )
        for row, ylabel in ((0, "median time (s)"), (1, "peak extra memory (MiB)")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            if any(min(line.get_ydata(), default=0) > 0 for line in ax.get_lines()):
                ax.set_yscale("log")
            ax.set_xlabel("sequence length T")
            ax.set_ylabel(ylabel)
            ax.set_title(score)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048, 8192, 32768])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scores", nargs="+", choices=SCORES, default=list(SCORES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64, help="additive score's hidden size")
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="skip sizes whose call would take longer (s, extrapolated)",
    )
    parser.add_argument(
        "--max-gib",
        type=float,
        default=8.0,
        help="skip materialising paths that would need more memory",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip memory measurements")
    parser.add_argument("--out", default="benchmarks/out", help="where JSON and plot go")


def main_args(args: argparse.Namespace) -> int:
    if args.repeats < 5:
        raise ValueError("--repeats must be at least 5 (medians of fewer are noise)")
    shape = Shape(args.batch, args.heads, args.head_dim, args.hidden, args.backward)
    print(f"shape {shape}; median of {args.repeats}; torch {torch.__version__}", flush=True)
    rows = run(
        args.sizes,
        args.threads,
        args.scores,
        shape,
        args.repeats,
        args.budget,
        args.max_gib,
        memory=not args.no_memory,
        log=lambda s: print(s, flush=True),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "attention_kernels.json").write_text(
        json.dumps({"shape": shape.__dict__, "rows": rows}, indent=1)
    )
    plot(rows, out / "attention_kernels.png")
    print(f"wrote {out / 'attention_kernels.json'} and {out / 'attention_kernels.png'}")
    return 0


def _peak_main(argv: list[str]) -> None:
    score, path, t, shape_json, threads = argv
    torch.set_num_threads(int(threads))
    shape = Shape(**json.loads(shape_json))
    print(json.dumps(measure_peak_here(score, path, int(t), shape)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_peak":
        _peak_main(sys.argv[2:])
    else:
        p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        add_arguments(p)
        sys.exit(main_args(p.parse_args()))
