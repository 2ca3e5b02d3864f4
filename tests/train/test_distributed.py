"""Data-parallel training with torchrun on CPU (gloo, 2 local processes): the same losses and
metrics as one process, every held-out example scored once, and a run whose process dies
continues with --resume under another number of processes to the uninterrupted run's result."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from attnkit.train import distributed

pytestmark = pytest.mark.slow

# 1,503 pairs: 1,178 training and 295 held out (odd); the last batch of an epoch is a partial one
ARGS = [
    "train",
    "times",
    "--n",
    "1503",
    "--epochs",
    "3",
    "--hidden",
    "32",
    "--batch-size",
    "32",
    "--threads",
    "1",
]
ENV = {
    **os.environ,
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
    "CUDA_VISIBLE_DEVICES": "",
}  # gloo on the CPU, also where there is a GPU


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "attnkit.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        **kw,
    )


def _history(out: Path) -> list[dict]:
    return torch.load(out / "trainer.pt", weights_only=True)["history"]


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    done = _cli(*ARGS, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_two_processes_give_the_losses_and_metrics_of_one(single, tmp_path):
    out = tmp_path / "two"
    done = _cli(*ARGS, "--out", str(out), "--nproc", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("best held-out exact match") == 1  # one process speaks
    one, two = _history(single), _history(out)
    steps_one = [x for h in one for x in h["step_losses"]]
    steps_two = [x for h in two for x in h["step_losses"]]
    assert len(steps_one) == len(steps_two) >= 100
    assert max(abs(a - b) for a, b in zip(steps_one[:50], steps_two[:50], strict=True)) < 1e-5
    assert max(abs(a - b) for a, b in zip(steps_one, steps_two, strict=True)) < 1e-4
    for a, b in zip(one, two, strict=True):
        assert a["n"] == b["n"] and a["n"] % 2 == 1  # held-out size not divisible by 2
        assert a["exact_match"] == b["exact_match"]
        assert a["char_accuracy"] == pytest.approx(b["char_accuracy"], abs=1e-12)
    config_one = json.loads((single / "config.json").read_text())
    config_two = json.loads((out / "config.json").read_text())
    assert config_one["metrics"] == config_two["metrics"]


def test_one_process_under_torchrun_joins_a_group_and_trains_as_without_it(single, tmp_path):
    out = tmp_path / "torchrun1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=1",
        "-m",
        "attnkit.cli",
        "--",
        *ARGS,
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    one, launched = _history(single), _history(out)
    steps_one = [x for h in one for x in h["step_losses"]]
    steps_launched = [x for h in launched for x in h["step_losses"]]
    assert len(steps_one) == len(steps_launched)
    assert max(abs(a - b) for a, b in zip(steps_one, steps_launched, strict=True)) < 1e-6
    assert [h["exact_match"] for h in one] == [h["exact_match"] for h in launched]


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from attnkit.train import distributed
    from attnkit.train.loop import _evaluate

    class Task:
        selection_metric = "n"
        def predict_rows(self, model, data, rows):
            return [(r, data[r]) for r in rows]
        def score(self, data, preds):
            return {"n": len(preds), "rows": [r for r, _ in preds],
                    "sum": sum(v for _, v in preds)}

    class Plain:  # no sharded protocol: rank 0 evaluates, every rank gets its metrics
        selection_metric = "n"
        def evaluate(self, model, data):
            return {"n": len(data), "rank": distributed.context().rank}

    with distributed.group() as ctx:
        data = list(range(100, 107))  # 7 examples: not divisible by 2
        sharded = _evaluate(Task(), None, data, ctx)
        plain = _evaluate(Plain(), None, data, ctx)
    with open(f"{sys.argv[1]}/rank{ctx.rank}.json", "w") as f:
        json.dump({"world": ctx.world, "sharded": sharded, "plain": plain,
                   "mine": list(distributed.shard(len(data), ctx.rank, ctx.world))}, f)
    """
)


def test_held_out_examples_are_scored_once_each(tmp_path):
    script = tmp_path / "evaluate.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["mine"] + ranks[1]["mine"] == list(range(7))  # disjoint, no padding
    for r in ranks:
        assert r["sharded"] == {"n": 7, "rows": list(range(7)), "sum": sum(range(100, 107))}
        assert r["plain"] == {"n": 7, "rank": 0}


def test_shards_tile_the_examples():
    for n in (0, 1, 2, 7, 100):
        for world in (1, 2, 3, 8):
            rows = [i for r in range(world) for i in distributed.shard(n, r, world)]
            assert rows == list(range(n))


def _workers(launcher: int) -> dict[int, int]:
    """{rank: pid} of the training processes under a launcher's pid (Linux /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher:
            for item in env:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(proc.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_killed_process_stops_the_run_and_resume_with_one_process_ends_the_same(single, tmp_path):
    out = tmp_path / "cut"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "attnkit.cli", *ARGS, "--out", str(out), "--nproc", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 300
    while not (out / "trainer.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (out / "trainer.pt").exists(), "the first epoch never finished"
    torchrun = None
    while torchrun is None and time.time() < deadline:
        kids = [pid for pid in _workers_of(launcher.pid)]
        torchrun = kids[0] if kids else None
    workers = {}
    while len(workers) < 2 and time.time() < deadline:
        workers = _workers(torchrun)
    os.kill(workers[1], signal.SIGKILL)  # rank 1 dies in the second epoch
    _, err = launcher.communicate(timeout=300)
    assert launcher.returncode != 0
    assert "a training process failed" in err and "--resume" in err
    assert _history(out)[-1]["epoch"] < 3
    resumed = _cli(*ARGS, "--out", str(out), "--resume")  # one process now
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    a = json.loads((single / "config.json").read_text())["metrics"]
    b = json.loads((out / "config.json").read_text())["metrics"]
    assert a["exact_match"] == b["exact_match"]
    assert a["char_accuracy"] == pytest.approx(b["char_accuracy"], abs=1e-12)


def _workers_of(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(proc.name))
    return out
