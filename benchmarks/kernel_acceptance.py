"""The fast-kernel figures, each measured as a ratio within one run.

1. AdditiveAttention, B=8, Tq=Tk=512, D=hidden=128, forward + backward, 1 thread: attnkit
   (auto: the chunked kernel with the fused score) against the naive materialising form, time
   (median of --repeats) and peak extra memory (one call in a fresh process each).
2. ``attend`` (auto) against F.scaled_dot_product_attention at T=512 and T=4096 (B=1, H=8,
   D=64, forward), calls interleaved, median ratio, 1 and 2 threads.
3. Peak extra memory of exact scaled-dot attention at T=32768 (B=1, H=8, D=64; auto and the
   chunked kernel) and of AdditiveAttention with hidden 64 at T=8192 (B=1), forward.
4. Causal linear attention against causal SDPA at T=8192 (B=1, H=8, D=64, forward), and the
   largest difference between LinearAttention's recurrent and parallel forms.

    python benchmarks/kernel_acceptance.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import attnkit as ak
from attnkit.bench.attention import median_seconds, naive_additive, peak_extra_bytes

GIB = 1 << 30


def additive_case(b, t, d, hidden, grad):
    torch.manual_seed(0)
    layer = ak.AdditiveAttention(d, d, hidden)
    x = torch.randn(b, t, d, requires_grad=grad)
    return layer, x


CASES = {
    # name: (build inputs, run once); run returns nothing
    "additive_fast": lambda: _additive_run(8, 512, 128, 128, naive=False, grad=True),
    "additive_naive": lambda: _additive_run(8, 512, 128, 128, naive=True, grad=True),
    "additive_8192": lambda: _additive_run(1, 8192, 64, 64, naive=False, grad=False),
    "dot_32768_auto": lambda: _dot_run(32768, "auto"),
    "dot_32768_chunked": lambda: _dot_run(32768, "chunked"),
}


def _additive_run(b, t, d, hidden, naive, grad):
    layer, x = additive_case(b, t, d, hidden, grad)

    def go():
        with torch.set_grad_enabled(grad):
            if naive:  # the materialising form: a (B, T, T, hidden) tensor
                out = naive_additive(x, x, x, layer.params())
            else:
                out = layer(x, x, return_weights=False).context
            if grad:
                out.sum().backward()

    return go


def _dot_run(t, impl):
    q, k, v = (torch.randn(1, 8, t, 64) for _ in range(3))

    def go():
        with torch.no_grad():
            ak.attend(q, k, v, impl=impl)

    return go


def peak_in_child(case: str, threads: int) -> int:
    cmd = [sys.executable, __file__, "--_peak", case, str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return int(json.loads(proc.stdout.strip().splitlines()[-1]))


def _peak_main(case: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if case.startswith("additive"):
        _additive_run(1, 16, 8, 8, naive=False, grad=True)()  # builds/loads the library
    print(json.dumps(peak_extra_bytes(CASES[case]())))


def interleaved_ratio(fn_a, fn_b, repeats):
    """median(a) / median(b) with the calls alternating, so drift affects both alike."""
    fn_a(), fn_b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, sink in ((fn_a, ta), (fn_b, tb)):
            t0 = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t0)
    return (
        statistics.median(ta) / statistics.median(tb),
        statistics.median(ta),
        statistics.median(tb),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="skip the T=32768 runs")
    args = parser.parse_args()
    report = {}

    # 1. additive fwd+bwd, 1 thread
    torch.set_num_threads(1)
    fast, naive = CASES["additive_fast"](), CASES["additive_naive"]()
    t_fast, t_naive = median_seconds(fast, args.repeats), median_seconds(naive, args.repeats)
    m_fast, m_naive = peak_in_child("additive_fast", 1), peak_in_child("additive_naive", 1)
    report["additive_b8_t512_h128_fwd_bwd_1t"] = {
        "attnkit_s": t_fast,
        "naive_s": t_naive,
        "speedup": t_naive / t_fast,
        "attnkit_peak_MiB": m_fast / 2**20,
        "naive_peak_MiB": m_naive / 2**20,
        "memory_fraction": m_fast / m_naive,
    }
    print(
        f"1. additive B=8 T=512 hidden=128 fwd+bwd, 1 thread: attnkit {t_fast * 1e3:.0f} ms, "
        f"naive {t_naive * 1e3:.0f} ms -> {t_naive / t_fast:.1f}x faster; peak "
        f"{m_fast / 2**20:.0f} MiB vs {m_naive / 2**20:.0f} MiB = 1/{m_naive / m_fast:.0f}",
        flush=True,
    )

    # 2. attend auto vs SDPA
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for t in (512, 4096):
            q, k, v = (torch.randn(1, 8, t, 64) for _ in range(3))
            with torch.no_grad():
                ratio, ta, tb = interleaved_ratio(
                    lambda q=q, k=k, v=v: ak.attend(q, k, v),
                    lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v),
                    max(args.repeats, 5),
                )
            report[f"attend_vs_sdpa_T{t}_{threads}t"] = {
                "ratio": ratio,
                "attend_s": ta,
                "sdpa_s": tb,
            }
            print(
                f"2. attend auto / SDPA at T={t}, {threads} thread(s): {ratio:.3f} "
                f"({ta * 1e3:.1f} vs {tb * 1e3:.1f} ms)",
                flush=True,
            )

    # 3. memory at long T
    cases = ["additive_8192"] + ([] if args.quick else ["dot_32768_auto", "dot_32768_chunked"])
    for case in cases:
        t0 = time.perf_counter()
        peak = peak_in_child(case, 2)
        report[f"peak_{case}"] = {"peak_MiB": peak / 2**20, "seconds": time.perf_counter() - t0}
        print(
            f"3. {case}: peak extra memory {peak / 2**20:.0f} MiB "
            f"({time.perf_counter() - t0:.1f} s incl. process start)",
            flush=True,
        )

    # 4. causal linear vs causal SDPA, recurrent vs parallel
    for threads in (1, 2):
        torch.set_num_threads(threads)
        q, k, v = (torch.randn(1, 8, 8192, 64) for _ in range(3))
        with torch.no_grad():
            ratio, ta, tb = interleaved_ratio(
                lambda q=q, k=k, v=v: ak.attend(q, k, v, score="linear", causal=True),
                lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                max(args.repeats, 5),
            )
        report[f"linear_vs_sdpa_causal_T8192_{threads}t"] = {
            "ratio": ratio,
            "linear_s": ta,
            "sdpa_s": tb,
        }
        print(
            f"4. causal linear / causal SDPA at T=8192, {threads} thread(s): {ratio:.3f} "
            f"({ta * 1e3:.0f} vs {tb * 1e3:.0f} ms)",
            flush=True,
        )
    torch.manual_seed(0)
    layer = ak.LinearAttention(64, num_heads=8)
    x = torch.randn(2, 2048, 64)
    with torch.no_grad():
        full = layer(x, causal=True).context
        state, steps = None, []
        for t in range(x.shape[1]):
            out, state = layer.step(x[:, t], state)
            steps.append(out)
    diff = (torch.stack(steps, 1) - full).abs().max().item()
    report["linear_recurrent_vs_parallel_max_abs_diff"] = diff
    print(f"4. LinearAttention recurrent vs parallel, T=2048 float32: max |diff| {diff:.2e}")
    out_dir = Path("benchmarks/out")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "kernel_acceptance.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_peak":
        _peak_main(sys.argv[2], int(sys.argv[3]))
    else:
        main()
