"""The decoder-only language model: cached generation equals recomputing the prefix (tokens
and logits), for every kernel and kind of positions; the future never reaches the past."""

from types import SimpleNamespace

import pytest
import torch

from attnkit import KVCache
from attnkit.models import DecoderOnly, DecoderOnlyConfig

SMALL = dict(vocab_size=23, d_model=16, num_heads=4, layers=2, dropout=0.0, max_len=64)


def model(**kw) -> DecoderOnly:
    torch.manual_seed(0)
    return DecoderOnly(DecoderOnlyConfig(**{**SMALL, **kw})).eval()


@pytest.mark.property
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked"])
@pytest.mark.parametrize("positions", ["rotary", "sinusoidal", "learned"])
def test_cached_generation_equals_recomputing_the_prefix(impl, positions, monkeypatch):
    monkeypatch.setenv("ATTNKIT_ATTENTION_IMPL", impl)
    m = model(positions=positions)
    prompt = torch.randint(3, 23, (2, 5), generator=torch.Generator().manual_seed(1))
    cached = m.generate(prompt, 20)
    torch.testing.assert_close(cached, m.generate(prompt, 20, use_cache=False), rtol=0, atol=0)
    # the logits of every generated position, with and without the cache
    caches = [KVCache() for _ in m.blocks]
    step = [m(prompt, caches=caches)[:, -1]]
    for t in range(prompt.shape[1], cached.shape[1] - 1):
        step.append(m(cached[:, t : t + 1], caches=caches)[:, -1])
    full = m(cached[:, :-1])[:, prompt.shape[1] - 1 :]
    torch.testing.assert_close(torch.stack(step, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.property
def test_generation_leaves_the_model_trainable():
    """generate runs in inference mode; neither its output nor the rotary tables it built may
    break a training step afterwards."""
    m = model(max_len=200).train()
    out = m.generate(torch.tensor([[3, 4, 5]]), 150)  # tables grow past their first size
    assert m.training
    m.loss(SimpleNamespace(tokens=out)).backward()
    assert m.embed.weight.grad is not None and torch.isfinite(m.embed.weight.grad).all()


@pytest.mark.property
def test_sampling_is_reproducible_and_top_k_limits_the_choices():
    m = model()
    prompt = torch.tensor([[3, 4, 5]])
    a = m.generate(prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(7))
    b = m.generate(
        prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(7), use_cache=False
    )
    assert torch.equal(a, b)
    top1 = m.generate(prompt, 10, temperature=2.0, top_k=1, generator=torch.Generator())
    assert torch.equal(top1, m.generate(prompt, 10))  # top-1 sampling is greedy


@pytest.mark.property
def test_the_future_never_changes_earlier_logits_and_weights_are_causal():
    m = model()
    ids = torch.randint(3, 23, (2, 9))
    other = ids.clone()
    other[:, 6:] = 4
    torch.testing.assert_close(m(ids)[:, :6], m(other)[:, :6])
    _, weights = m(ids, return_weights=True)
    assert len(weights) == 2 and all((w.triu(1) == 0).all() for w in weights)


@pytest.mark.property
def test_training_lowers_the_loss_and_embeddings_are_tied():
    torch.manual_seed(0)
    m = DecoderOnly(DecoderOnlyConfig(**SMALL))
    assert m.out.weight is m.embed.weight
    batch = SimpleNamespace(tokens=torch.randint(3, 23, (4, 12)))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = m.loss(batch).item()
    for _ in range(80):
        opt.zero_grad()
        m.loss(batch).backward()
        opt.step()
    assert m.loss(batch).item() < first / 3


@pytest.mark.bad_input
def test_bad_inputs_are_refused():
    m = model(max_len=8)
    with pytest.raises(ValueError, match="exceed max_len 8"):
        m.generate(torch.tensor([[3, 4, 5]]), 6)
    with pytest.raises(ValueError, match="ids must be"):
        m(torch.rand(1, 3))
    with pytest.raises(ValueError, match="prompt must be"):
        m.generate(torch.zeros(1, 0, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="temperature must be"):
        m.generate(torch.tensor([[3]]), 2, temperature=-1)


@pytest.mark.property
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked"])
def test_selected_weights_are_slices_and_rows_sum_to_one(impl, monkeypatch):
    monkeypatch.setenv("ATTNKIT_ATTENTION_IMPL", impl)
    m = model()
    ids = torch.randint(3, 23, (2, 9), generator=torch.Generator().manual_seed(5))
    _, full = m(ids, return_weights=True)
    _, some = m(ids, return_weights=True, layers=[0], heads=[3], rows=[8, 0])
    assert some[1] is None
    torch.testing.assert_close(some[0], full[0][:, [3]][:, :, [8, 0]], atol=1e-6, rtol=1e-5)
    for w in full:
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
