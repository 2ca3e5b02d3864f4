"""The text classifier: every pooling learns a small token task, padding changes nothing,
and the weights it returns are over the real tokens (and sentences)."""

import pytest
import torch

from attnkit.models import CLASSIFIER_POOLINGS, TextClassifier, TextClassifierConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _flat(n=160, seed=0):
    # class 1 when token 3 appears among the real tokens; padding holds token 3 too, to trap
    # a model that reads past the lengths
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 9, (n,), generator=g)
    ids = torch.randint(4, 30, (n, 8), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    where = (torch.rand(n, generator=g) * lengths).long()
    ids[torch.arange(n)[y == 1], where[y == 1]] = 3
    ids[torch.arange(8)[None] >= lengths[:, None]] = 3
    return ids, lengths, y


def _docs(n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 30, (n, 3, 5), generator=g)
    lengths = torch.randint(1, 6, (n, 3), generator=g)
    lengths[:, 2] *= torch.randint(0, 2, (n,), generator=g)  # some documents have 2 sentences
    y = torch.randint(0, 2, (n,), generator=g)
    s = (torch.rand(n, generator=g) * (1 + (lengths[:, 2] > 0))).long()
    w = (torch.rand(n, generator=g) * lengths[torch.arange(n), s]).long()
    ids[torch.arange(n)[y == 1], s[y == 1], w[y == 1]] = 3
    return ids, lengths, y


@pytest.mark.parametrize("pooling", CLASSIFIER_POOLINGS)
def test_every_pooling_learns_whether_a_token_appears(pooling):
    torch.manual_seed(0)
    make = _docs if pooling == "han" else _flat
    ids, lengths, y = make()
    model = TextClassifier(
        TextClassifierConfig(
            vocab_size=30,
            embed_dim=12,
            hidden_dim=12,
            attention_dim=8,
            pooling=pooling,
            dropout=0.0,
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(ids, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_ids, test_lengths, test_y = make(seed=1)
    model.eval()
    accuracy = (model(test_ids, test_lengths).argmax(1) == test_y).float().mean()
    assert accuracy > 0.85, (pooling, float(accuracy))


@pytest.mark.parametrize("pooling", ["attention", "self-attention", "gate", "max"])
def test_padding_tokens_change_nothing(pooling):
    torch.manual_seed(0)
    model = TextClassifier(
        TextClassifierConfig(vocab_size=30, embed_dim=8, hidden_dim=6, pooling=pooling)
    ).eval()
    ids, lengths, _ = _flat(6)
    other = ids.clone()
    pad = torch.arange(8)[None] >= lengths[:, None]
    other[pad] = 17
    a, wa = model(ids, lengths, return_weights=True)
    b, _ = model(other, lengths, return_weights=True)
    torch.testing.assert_close(a, b)
    if pooling in ("attention", "self-attention"):
        assert (wa[pad] == 0).all()
        torch.testing.assert_close(wa.sum(1), torch.ones(6))


def test_bad_inputs_are_refused():
    model = TextClassifier(TextClassifierConfig(vocab_size=10))
    with pytest.raises(ValueError, match="token ids must be in"):
        model(torch.tensor([[1, 12]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="int64"):
        model(torch.tensor([[1.0, 2.0]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="lengths must be in"):
        model(torch.tensor([[1, 2]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="unknown pooling"):
        TextClassifier(TextClassifierConfig(pooling="median"))
    han = TextClassifier(TextClassifierConfig(vocab_size=10, pooling="han"))
    with pytest.raises(ValueError, match="documents"):
        han(torch.tensor([[1, 2]]), torch.tensor([2]))
