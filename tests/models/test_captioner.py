"""The Show, Attend and Tell captioner: shapes, attention maps that are distributions over the
grid, decoding that agrees with teacher forcing, padding that changes nothing, the doubly
stochastic regulariser against its formula, and reload."""

from types import SimpleNamespace

import pytest
import torch

from attnkit.models import Captioner, CaptionerConfig
from attnkit.models.decoding import beam_search, greedy
from attnkit.train import load_model, save_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kw) -> Captioner:
    torch.manual_seed(0)
    return Captioner(
        CaptionerConfig(widths=(8, 16), hidden_dim=24, attention_dim=12, embed_dim=8, **kw)
    ).eval()


@pytest.mark.property
@pytest.mark.parametrize("size, grid", [((8, 40), (2, 10)), ((16, 16), (4, 4)), ((12, 20), (3, 5))])
def test_every_step_attends_with_a_distribution_over_the_grid(size, grid):
    m = _model()
    images = torch.rand(3, 1, *size)
    tgt = torch.randint(3, 13, (3, 5))
    logits, weights = m(images, tgt)
    assert logits.shape == (3, 5, 13) and weights.shape == (3, 5, *grid)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum((-2, -1)), torch.ones(3, 5))
    out = greedy(m, images, None)
    assert out.weights.shape[2:] == grid
    torch.testing.assert_close(out.weights.sum((-2, -1)), torch.ones(out.weights.shape[:2]))


@pytest.mark.property
def test_greedy_decoding_gives_the_teacher_forced_logits_of_its_own_output():
    m = _model(max_output_len=6)
    images = torch.rand(4, 1, 8, 40)
    out = greedy(m, images, None, max_len=6)
    steps = out.weights.shape[1]
    ids = torch.full((4, steps), m.cfg.eos_id)
    for i, seq in enumerate(out.ids):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    _, weights = m(images, ids)
    for i, seq in enumerate(out.ids):
        n = min(len(seq) + 1, steps)  # the digits and the end of sequence
        torch.testing.assert_close(weights[i, :n], out.weights[i, :n], atol=1e-6, rtol=1e-5)
    one = beam_search(m, images[:1], None, width=1, max_len=6)
    assert one.ids[0] == out.ids[0]


@pytest.mark.property
def test_captions_do_not_depend_on_the_other_images_of_the_batch():
    m = _model()
    images = torch.rand(5, 1, 8, 40)
    for search in (greedy, lambda *a: beam_search(*a, width=3)):
        together = search(m, images, None)
        for i in range(5):
            alone = search(m, images[i : i + 1], None)
            assert together.ids[i] == alone.ids[0]
            n = alone.weights.shape[1]
            torch.testing.assert_close(
                together.weights[i, :n], alone.weights[0], atol=1e-6, rtol=1e-5
            )


@pytest.mark.property
def test_padding_steps_change_neither_the_loss_nor_the_regulariser():
    m = _model(doubly_stochastic=0.3)
    x = torch.rand(2, 1, 8, 40)
    tgt = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0]])
    padded = torch.cat([tgt, torch.zeros(2, 3, dtype=torch.long)], 1)
    a = m.loss(SimpleNamespace(x=x, tgt=tgt))
    b = m.loss(SimpleNamespace(x=x, tgt=padded))
    torch.testing.assert_close(a, b)


def test_the_doubly_stochastic_regulariser_is_lambda_sum_of_one_minus_attention_squared():
    plain, reg = _model(), _model(doubly_stochastic=0.5)
    reg.load_state_dict(plain.state_dict())
    x = torch.rand(3, 1, 8, 40)
    tgt = torch.tensor([[5, 6, 7, 2], [8, 9, 2, 0], [3, 2, 0, 0]])
    _, weights = plain(x, tgt)
    real = (tgt != 0).float()[:, :, None, None]
    expected = 0.5 * ((1 - (weights * real).sum(1)) ** 2).sum((1, 2)).mean()
    got = reg.loss(SimpleNamespace(x=x, tgt=tgt)) - plain.loss(SimpleNamespace(x=x, tgt=tgt))
    torch.testing.assert_close(got, expected)


def test_a_saved_captioner_reloads_with_identical_outputs(tmp_path):
    m = _model(block="cbam").train()
    m(torch.rand(8, 1, 8, 40), torch.randint(3, 13, (8, 3)))  # moves the batch-norm statistics
    m.eval()
    save_model(tmp_path, m, {})
    again, _ = load_model(tmp_path)
    images = torch.rand(3, 1, 8, 40)
    a, b = greedy(m, images, None), greedy(again, images, None)
    assert a.ids == b.ids
    assert torch.equal(a.weights, b.weights) and torch.equal(a.scores, b.scores)


@pytest.mark.bad_input
def test_bad_images_and_configs_are_refused():
    with pytest.raises(ValueError, match="expected float images"):
        _model()(torch.zeros(2, 3, 8, 40), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="expected float images"):
        greedy(_model(), torch.zeros(2, 1, 8, 40, dtype=torch.long), None)
    with pytest.raises(ValueError, match="doubly_stochastic"):
        _model(doubly_stochastic=-1.0)
    with pytest.raises(ValueError, match="unknown block"):
        _model(block="sk")
    with pytest.raises(ValueError, match="hidden_dim"):
        Captioner(CaptionerConfig(hidden_dim=0))
