"""Models of price windows: shapes, refusals, the attention block's weights, DLinear's
decomposition, and a reload in a new process that predicts identically."""

import subprocess
import sys

import pytest
import torch

from attnkit.models import SERIES_MODELS, build
from attnkit.train.checkpoint import load_model, save_model

SMALL = {"features": 5, "window": 8, "out": 3}


@pytest.mark.parametrize("name", SERIES_MODELS)
@pytest.mark.parametrize("out", [1, 3])
def test_every_model_scores_a_window_per_row(name, out):
    torch.manual_seed(0)
    model = build(name, {**SMALL, "out": out}).eval()
    x = torch.randn(4, 8, 5)
    scores = model(x)
    assert scores.shape == (4, out)
    # rows are independent: a row scored alone gets the same scores as in the batch
    torch.testing.assert_close(model(x[2:3]), scores[2:3], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", SERIES_MODELS)
def test_wrong_windows_are_refused(name):
    model = build(name, SMALL)
    for bad in (torch.randn(4, 7, 5), torch.randn(4, 8, 6), torch.randn(8, 5)):
        with pytest.raises(ValueError, match="expected windows"):
            model(bad)
    with pytest.raises(ValueError, match="floating point"):
        model(torch.ones(2, 8, 5, dtype=torch.long))


@pytest.mark.parametrize("heads", [1, 4])
def test_attention_weights_are_distributions_over_the_window(heads):
    model = build("series-attention", {**SMALL, "num_heads": heads, "d_model": 16}).eval()
    scores, weights = model(torch.randn(3, 8, 5), return_weights=True)
    assert weights[0].shape == (3, heads, 8, 8)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(3, heads, 8))
    assert (weights[0] >= 0).all()
    assert scores.shape == (3, 3)


def test_attention_depends_on_the_input_and_the_mlp_bar_weights_do_not():
    torch.manual_seed(1)
    att = build("series-attention", {**SMALL, "d_model": 16}).eval()
    a = att(torch.randn(1, 8, 5), return_weights=True)[1][0]
    b = att(torch.randn(1, 8, 5), return_weights=True)[1][0]
    assert not torch.allclose(a, b)
    mlp = build("series-mlp", SMALL)
    w = mlp.bar_weights()
    assert w.shape == (8,) and torch.isclose(w.sum(), torch.tensor(1.0)) and (w > 0).all()


def test_dlinear_trend_plus_remainder_is_the_window_and_a_constant_has_no_remainder():
    model = build("series-linear", {**SMALL, "kernel": 3})
    x = torch.randn(2, 8, 5)
    trend, rest = model.decompose(x)
    torch.testing.assert_close(trend + rest, x)
    # the middle of the trend is the 3-bar moving average
    torch.testing.assert_close(trend[:, 1:-1], (x[:, :-2] + x[:, 1:-1] + x[:, 2:]) / 3)
    flat = torch.full((1, 8, 5), 2.5)
    torch.testing.assert_close(model.decompose(flat)[1], torch.zeros(1, 8, 5))
    with pytest.raises(ValueError, match="odd"):
        build("series-linear", {**SMALL, "kernel": 4})


@pytest.mark.parametrize("name", SERIES_MODELS)
def test_a_saved_model_predicts_identically_in_a_new_process(name, tmp_path):
    torch.manual_seed(2)
    model = build(name, SMALL).eval()
    x = torch.randn(6, 8, 5)
    torch.save(x, tmp_path / "x.pt")
    save_model(tmp_path / "ckpt", model, {"task": {"name": "prices"}})
    reloaded, _ = load_model(tmp_path / "ckpt")
    assert torch.equal(reloaded(x), model(torch.clone(x)))
    # with this process's thread count: products split otherwise may round differently
    code = (
        "import sys, torch; from attnkit.train.checkpoint import load_model; "
        "torch.set_num_threads(int(sys.argv[4])); "
        "m, _ = load_model(sys.argv[1]); x = torch.load(sys.argv[2]); "
        "torch.save(m(x).detach(), sys.argv[3])"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "ckpt"),
            str(tmp_path / "x.pt"),
            str(tmp_path / "y.pt"),
            str(torch.get_num_threads()),
        ],
        check=True,
    )
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "y.pt"), model(x))
