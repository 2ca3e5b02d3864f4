"""Pooling by name and the Raffel & Ellis network: padded steps never count, each pooling
learns a task it can solve, and the attention model finds the marked steps."""

import pytest
import torch

from attnkit.models import POOLINGS, Pooling, RaffelConfig, RaffelEllis, build
from attnkit.tasks.longmemory import make_batch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kind", POOLINGS)
def test_padded_steps_never_change_the_pooled_vector(kind):
    torch.manual_seed(0)
    pool = Pooling(kind, 6)
    x = torch.randn(3, 7, 6)
    lengths = torch.tensor([7, 4, 1])
    out, weights = pool(x, lengths)
    noisy = x.clone()
    for i, n in enumerate(lengths.tolist()):
        noisy[i, n:] = 1e4 * torch.randn(7 - n, 6)
    again, _ = pool(noisy, lengths)
    torch.testing.assert_close(out, again)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    if kind == "attention":
        torch.testing.assert_close(weights.sum(1), torch.ones(3))
        assert (weights[1, 4:] == 0).all() and (weights[2, 1:] == 0).all()


def test_the_simple_poolings_by_hand():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-5.0], [4.0]]])
    lengths = torch.tensor([2, 3])
    torch.testing.assert_close(
        Pooling("mean", 1)(x, lengths)[0].flatten(), torch.tensor([2.0, 1 / 3])
    )
    assert Pooling("max", 1)(x, lengths)[0].flatten().tolist() == [3.0, 4.0]
    assert Pooling("last", 1)(x, lengths)[0].flatten().tolist() == [3.0, 4.0]


@pytest.mark.parametrize("kind", POOLINGS)
def test_each_pooling_learns_a_separable_task(kind):
    # the class shows on every real step (channel 0 is +-1 plus noise); padding is loud noise
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (256,), generator=g)
    lengths = torch.randint(3, 10, (256,), generator=g)
    real = torch.arange(9)[None] < lengths[:, None]
    x = 0.5 * torch.randn(256, 9, 3, generator=g)
    x[..., 0] += (2.0 * y - 1)[:, None]
    x = torch.where(real[..., None], x, 5 * torch.randn(256, 9, 3, generator=g))
    torch.manual_seed(0)
    step, pool, head = torch.nn.Linear(3, 16), Pooling(kind, 16), torch.nn.Linear(16, 2)
    params = [*step.parameters(), *pool.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=0.02)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(head(pool(step(x), lengths)[0]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (head(pool(step(x), lengths)[0]).argmax(1) == y).float().mean()
    assert accuracy > 0.8, (kind, float(accuracy))


def test_raffel_ellis_attends_to_the_marked_steps_once_trained():
    torch.manual_seed(0)
    model = build("raffel-ellis", {"hidden_dim": 32})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        loss = model.loss(make_batch("add", 64, 20, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = make_batch("add", 200, 20, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        pred, weights = model(test.x, test.lengths, return_weights=True)
    assert float((pred - test.y).abs().mean()) < 0.05
    on_marked = weights.gather(1, test.marked).sum(1)
    uniform = 2 / test.lengths.float()  # what two steps would get with mean pooling
    assert float((on_marked / uniform).mean()) > 3


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown pooling"):
        Pooling("median", 4)
    with pytest.raises(ValueError, match="lengths must be in"):
        Pooling("mean", 4)(torch.randn(2, 3, 4), torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="expected x"):
        RaffelEllis(RaffelConfig())(torch.randn(2, 3, 2), torch.tensor([3]))
