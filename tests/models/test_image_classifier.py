"""The image classifier with no block, SE or CBAM: shapes and maps, learning the digits,
reload, and the vision commands end to end."""

import pytest
import torch

from attnkit.cli import main
from attnkit.models import BLOCKS, ImageClassifier, ImageClassifierConfig
from attnkit.recipes import vision

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("block", BLOCKS)
def test_shapes_and_maps_of_every_block(block):
    m = ImageClassifier(ImageClassifierConfig(block=block, widths=(8, 16, 16))).eval()
    logits, stages = m(torch.rand(3, 1, 12, 12), return_weights=True)
    assert logits.shape == (3, 10) and len(stages) == 3
    for (channel, spatial), (c, size) in zip(stages, [(8, 12), (16, 6), (16, 3)], strict=True):
        if block == "none":
            assert channel is None and spatial is None
            continue
        assert channel.shape == (3, c, 1, 1) and ((channel > 0) & (channel < 1)).all()
        if block == "cbam":
            assert spatial.shape == (3, 1, size, size) and ((spatial > 0) & (spatial < 1)).all()
        else:
            assert spatial is None
    torch.testing.assert_close(
        m(torch.ones(3, 1, 12, 12)),
        logits.new_tensor(m(torch.ones(1, 1, 12, 12)).expand(3, 10).tolist()),
    )


@pytest.mark.bad_input
def test_bad_images_and_configs_are_refused():
    with pytest.raises(ValueError, match="unknown block"):
        ImageClassifier(ImageClassifierConfig(block="sk"))
    with pytest.raises(ValueError, match="widths"):
        ImageClassifier(ImageClassifierConfig(widths=(8, 0)))
    with pytest.raises(ValueError, match="expected float images"):
        ImageClassifier(ImageClassifierConfig())(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("block", BLOCKS)
def test_every_block_learns_the_digits_and_reloads(block, tmp_path):
    run = vision.train(
        out=tmp_path, block=block, epochs=8, widths=(16, 32), progress=False, log=lambda *a: None
    )
    assert vision.evaluate(run)["accuracy"] > 0.9
    again = vision.load(tmp_path)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(vision.maps(run, x)[0], vision.maps(again, x)[0])


def test_train_eval_and_show_a_vision_checkpoint(tmp_path, capsys):
    out = tmp_path / "cbam"
    assert (
        main(
            [
                "train",
                "vision",
                "--block",
                "cbam",
                "--epochs",
                "2",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "test accuracy" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(out), "--json"]) == 0
    assert '"n": 270' in capsys.readouterr().out
    png = tmp_path / "maps.png"
    assert main(["show", "--checkpoint", str(out), "3", "--out", str(png)]) == 0
    assert png.stat().st_size > 1000 and "test image 3" in capsys.readouterr().out
    assert main(["show", "--checkpoint", str(out), "x"]) == 2
    assert main(["predict", "--checkpoint", str(out), "x"]) == 2
    assert "image classifier" in capsys.readouterr().err
    assert main(["train", "vision", "--pooling", "mean", "--out", str(tmp_path / "b")]) == 2


def _idx(path, array):
    import gzip

    header = bytes([0, 0, 8, array.dim()]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + bytes(array.flatten().tolist())))


def test_fashion_mnist_reads_the_debian_packages_idx_files(tmp_path, monkeypatch):
    from attnkit.tasks import debian, images

    folder = tmp_path / "debian" / "dataset-fashion-mnist" / images.FASHION_DIR
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    train_x = torch.randint(0, 256, (50, 28, 28), generator=g, dtype=torch.uint8)
    train_y = torch.arange(50, dtype=torch.uint8) % 10
    _idx(folder / "train-images-idx3-ubyte.gz", train_x)
    _idx(folder / "train-labels-idx1-ubyte.gz", train_y)
    _idx(folder / "t10k-images-idx3-ubyte.gz", train_x[:7])
    _idx(folder / "t10k-labels-idx1-ubyte.gz", train_y[:7])
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(debian, "installed", lambda package: False)
    data = images.fashion_mnist()
    assert (len(data.train), len(data.valid), len(data.test)) == (45, 5, 7)
    assert data.train.x.shape[1:] == (1, 28, 28) and data.classes[9] == "Ankle boot"
    torch.testing.assert_close(data.test.x[:, 0] * 255, train_x[:7].float())
    # training and validation images are the training file's, each once
    seen = torch.cat([data.train.x, data.valid.x])[:, 0].mul(255).round().to(torch.uint8)
    assert sorted(map(bytes, seen.flatten(1).numpy())) == sorted(
        map(bytes, train_x.flatten(1).numpy())
    )
    import gzip

    truncated = b"\x00\x00\x08\x01\x00\x00\x00\x09ab"  # 9 labels announced, 2 given
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(truncated))
    with pytest.raises(ValueError, match="bytes of data"):
        images.read_idx(folder / "t10k-labels-idx1-ubyte.gz")
