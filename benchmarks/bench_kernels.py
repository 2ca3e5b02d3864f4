"""Speed and peak memory of every attention kernel against torch SDPA and a naive reference.

The same as ``attnkit bench attention``; see ``attnkit.bench.attention`` for what is measured.

    python benchmarks/bench_kernels.py --sizes 128 512 2048 8192 32768 --threads 1 2
"""

from __future__ import annotations

import argparse
import sys

from attnkit.bench.attention import add_arguments, main_args

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main_args(parser.parse_args()))
