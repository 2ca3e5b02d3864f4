import os

import pytest
import torch

from attnkit.functional.attend import ENV_IMPL

# Under pytest-xdist every worker gets its share of the cores: two workers of two threads each
# on two cores would contend (OpenMP spinning) and run slower than one.
# Processes the tests start take the same count (torch reads OMP_NUM_THREADS), so a result
# compared across processes is computed with the same split of its matrix products.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, min(2, os.cpu_count() or 1) // _WORKERS)
torch.set_num_threads(_THREADS)
os.environ["OMP_NUM_THREADS"] = str(_THREADS)


@pytest.fixture(autouse=True)
def _seed_and_clean_env(monkeypatch):
    """Every test starts from seed 0 and without a forced kernel."""
    monkeypatch.delenv(ENV_IMPL, raising=False)
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One torch thread for the test: small models train faster without the threads' cost
    (and a second process on the machine does not slow them to a crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
