"""HierarchicalAttention (HAN): shapes, weights as distributions over real words and
sentences, padding that changes nothing, empty sentences and documents without NaN."""

import pytest
import torch

from attnkit.layers import HierarchicalAttention

LENGTHS = torch.tensor([[5, 3, 1, 0], [2, 0, 0, 0], [0, 0, 0, 0]])


@pytest.fixture
def han():
    torch.manual_seed(0)
    return HierarchicalAttention(6, hidden_dim=5, attention_dim=4).eval()


def test_weights_are_distributions_over_the_real_words_and_sentences(han):
    words = torch.randn(3, 4, 5, 6)
    out = han(words, LENGTHS)
    assert out.context.shape == (3, 10) and torch.isfinite(out.context).all()
    real = torch.arange(5)[None, None] < LENGTHS[..., None]
    assert (out.word_weights[~real] == 0).all()
    sums = out.word_weights.sum(-1)
    torch.testing.assert_close(sums[LENGTHS > 0], torch.ones(int((LENGTHS > 0).sum())))
    assert (out.sentence_weights[LENGTHS == 0] == 0).all()
    torch.testing.assert_close(out.sentence_weights[:2].sum(-1), torch.ones(2))
    # a document without a word: no NaN, context 0
    assert (out.context[2] == 0).all() and (out.sentence_weights[2] == 0).all()


def test_padding_changes_nothing(han):
    words = torch.randn(3, 4, 5, 6)
    noisy = words.clone()
    real = torch.arange(5)[None, None] < LENGTHS[..., None]
    noisy[~real] = 1e3 * torch.randn(int((~real).sum()), 6)
    a, b = han(words, LENGTHS), han(noisy, LENGTHS)
    torch.testing.assert_close(a.context, b.context)
    torch.testing.assert_close(a.word_weights, b.word_weights)
    # fewer padded slots: the same document in a smaller tensor
    small = han(words[:2, :3], LENGTHS[:2, :3])
    torch.testing.assert_close(small.context, a.context[:2])


def test_a_one_sentence_document_equals_its_sentence_alone(han):
    words = torch.randn(1, 3, 4, 6)
    one = han(words, torch.tensor([[4, 0, 0]]))
    assert one.sentence_weights[0].tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(one.context, han(words[:, :1], torch.tensor([[4]])).context)


def test_gradients_are_finite_with_empty_sentences_and_documents(han):
    han.train()
    words = torch.randn(3, 4, 5, 6, requires_grad=True)
    han(words, LENGTHS).context.sum().backward()
    for name, p in han.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    real = torch.arange(5)[None, None] < LENGTHS[..., None]
    assert torch.isfinite(words.grad).all() and (words.grad[~real] == 0).all()


@pytest.mark.parametrize(
    "words,lengths,message",
    [
        (torch.randn(2, 3, 6), torch.tensor([[1, 1]]), "words must be"),
        (torch.randn(1, 2, 4, 6), torch.tensor([[1, 5]]), "word_lengths must be in"),
        (torch.randn(1, 2, 4, 6), torch.tensor([[1.0, 2.0]]), "integer"),
        (torch.randn(1, 3, 4, 6), torch.tensor([[0, 2, 1]]), "come before"),
    ],
)
def test_bad_inputs_are_refused(han, words, lengths, message):
    with pytest.raises(ValueError, match=message):
        han(words, lengths)
