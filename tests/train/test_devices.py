"""Where training runs: device names, the default, and batches moved whole to a device."""

import dataclasses
from types import SimpleNamespace
from typing import NamedTuple

import pytest
import torch

from attnkit.train import devices, distributed


class Pair(NamedTuple):
    src: torch.Tensor
    lengths: list


@dataclasses.dataclass
class Box:
    x: torch.Tensor
    name: str = "b"


@pytest.fixture
def restore_choice():
    yield
    devices.use("auto")


def test_to_device_moves_every_tensor_and_keeps_the_containers():
    meta = torch.device("meta")
    batch = {
        "pair": Pair(torch.ones(2, 3), [torch.zeros(1), 4]),
        "box": Box(torch.arange(3)),
        "ns": SimpleNamespace(y=torch.ones(1), k=(1, "a")),
    }
    moved = devices.to_device(batch, meta)
    assert isinstance(moved["pair"], Pair) and moved["pair"].src.device == meta
    assert moved["pair"].lengths[0].device == meta and moved["pair"].lengths[1] == 4
    assert isinstance(moved["box"], Box) and moved["box"].x.device == meta
    assert moved["box"].name == "b"
    assert isinstance(moved["ns"], SimpleNamespace) and moved["ns"].y.device == meta
    assert moved["ns"].k == (1, "a")
    assert batch["pair"].src.device.type == "cpu"  # the original is left as it was


def test_device_of_a_model():
    assert devices.device_of(torch.nn.Linear(2, 2)).type == "cpu"
    assert devices.device_of(torch.nn.Identity()).type == "cpu"  # no parameters: the CPU
    with torch.device("meta"):
        assert devices.device_of(torch.nn.Linear(2, 2)).type == "meta"


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_device_names_are_refused(name, restore_choice):
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        devices.use(name)


@pytest.mark.bad_input
@pytest.mark.skipif(torch.cuda.is_available(), reason="for machines without a GPU")
def test_a_gpu_the_machine_lacks_is_refused_and_auto_is_the_cpu(restore_choice):
    with pytest.raises(ValueError, match="no GPU"):
        devices.use("cuda")
    devices.use("auto")
    assert distributed.training_device() == torch.device("cpu")
    devices.use("cpu")
    assert distributed.training_device() == torch.device("cpu")
