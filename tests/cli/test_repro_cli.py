"""``attnkit repro raffel`` end to end on short sequences, and ``solve`` by the protocol."""

import pytest

from attnkit.cli import main
from attnkit.recipes import raffel

pytestmark = pytest.mark.usefixtures("one_thread")


def test_attention_solves_the_adding_problem_on_short_sequences():
    seen = []
    r = raffel.solve(
        "add",
        12,
        "attention",
        max_batches=3000,
        test_every=250,
        test_size=500,
        progress=lambda step, worst: seen.append((step, worst)),
    )
    assert r.batches is not None and r.batches % 250 == 0 and r.worst_error < 0.04
    assert r.correct == 1.0 and r.tests == len(seen) == r.batches // 250
    assert all(worst >= 0.04 for _, worst in seen[:-1])  # solved at the first passing test


def test_the_command_prints_the_table_and_writes_it(tmp_path, capsys):
    out = tmp_path / "raffel.md"
    argv = [
        "repro",
        "raffel",
        "--lengths",
        "8,12",
        "--poolings",
        "attention,mean",
        "--max-batches",
        "20",
        "--problems",
        "add,multiply",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert "| problem | T | attention | mean |" in said.out
    for problem in ("add", "multiply"):
        for t in ("8", "12"):
            assert f"| {problem} | {t} | " in said.out
    assert "not solved in 20" in said.out  # 20 batches are far too few
    assert out.read_text(encoding="utf-8").strip() == said.out.strip()
    assert "attention pooling (up to 20 batches)" in said.err


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--lengths", "3"], "--lengths"),
        (["--lengths", "x"], "--lengths"),
        (["--poolings", "median"], "--poolings: unknown median"),
        (["--problems", "xor"], "--problems: unknown xor"),
    ],
)
def test_bad_requests_exit_2(flags, message, capsys):
    assert main(["repro", "raffel", *flags]) == 2
    assert message in capsys.readouterr().err


def test_keeping_freed_memory_is_available_where_glibc_is():
    import platform
    import subprocess
    import sys

    code = "from attnkit.recipes.memory import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out == str(glibc)
