"""A bounded load test of the explorer: ``attnkit serve`` in its own process on localhost, N
concurrent clients posting predictions for D seconds; errors, p50 / p95 latency, throughput.

    python benchmarks/serve_load.py --checkpoint runs/demo --clients 20 --seconds 30

Inputs are human-written dates the dates task generates (seed fixed), so every request is one
the model can read; any non-200 answer counts as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    p.add_argument("--beam", type=int, default=1)
    args = p.parse_args(argv)

    from attnkit.tasks import dates

    inputs = [src for src, _ in dates.generate(500, seed=123)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attnkit.cli",
            "serve",
            "--checkpoint",
            args.checkpoint,
            "--port",
            str(port),
            "--threads",
            str(args.threads),
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                models = httpx.get(f"{url}/api/models", timeout=2).json()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        name = models[0]["name"]
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def client(k: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                i = k
                while time.monotonic() < stop:
                    body = {"model": name, "text": inputs[i % len(inputs)], "beam": args.beam}
                    started = time.perf_counter()
                    try:
                        r = c.post("/api/predict", json=body)
                        ok, why = r.status_code == 200, f"{r.status_code} {r.text[:100]}"
                    except httpx.HTTPError as err:
                        ok, why = False, repr(err)
                    elapsed = time.perf_counter() - started
                    with lock:
                        (latencies.append(elapsed) if ok else errors.append(why))
                    i += args.clients

        started = time.monotonic()
        workers = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(30)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    result = {
        "model": name,
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
        "per_second": round(len(latencies) / wall, 1),
    }
    print(json.dumps(result))
    if errors:
        print(f"first errors: {errors[:3]}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
