import pytest
import torch

from attnkit.functional.kernels.native import ENV_DISABLE
from attnkit.models import ATTENTIONS, PRESETS, Seq2Seq, Seq2SeqConfig
from attnkit.models.gru import gru_supported
from attnkit.tasks import EOS


def tiny(attention, **kw):
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(12, 9, attention=attention, **{**PRESETS["tiny"], **kw}))


def batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, 12, (3, 7), generator=g)
    src_len = torch.tensor([7, 4, 1])
    src[1, 4:] = 0
    src[2, 1:] = 0
    tgt = torch.randint(3, 9, (3, 5), generator=g)
    tgt[:, -1] = EOS
    return src, src_len, tgt


@pytest.mark.parametrize("shared", [False, True], ids=["two-grus", "shared-encoder"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_kind_trains(attention, shared):
    model = tiny(attention, shared_encoder=shared).train()
    src, src_len, tgt = batch()
    assert model(src, src_len, tgt).shape == (3, 5, 9)
    loss = model.loss(src, src_len, tgt)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.property
@pytest.mark.parametrize("shared", [False, True], ids=["two-grus", "shared-encoder"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_padding_is_never_read(attention, shared):
    """An example decodes the same alone and in a batch padded to a longer input."""
    model = tiny(attention, dropout=0.0, shared_encoder=shared).eval()
    src, src_len, _ = batch()
    ids, weights = model.greedy(src, src_len)
    for i in range(3):
        alone, w_alone = model.greedy(src[i : i + 1, : src_len[i]], src_len[i : i + 1])
        assert alone[0] == ids[i]
        n = w_alone.shape[1]
        torch.testing.assert_close(weights[i, :n, : src_len[i]], w_alone[0], atol=1e-5, rtol=0)
        assert (weights[i, :, src_len[i] :] == 0).all()


@pytest.mark.property
@pytest.mark.parametrize("attention", ["additive", "general", "dot", "local-m"])
def test_weights_are_distributions(attention):
    model = tiny(attention, dropout=0.0).eval()
    src, src_len, _ = batch()
    _, weights = model.greedy(src, src_len)
    sums = weights.sum(-1)
    assert torch.allclose(sums[sums > 0], torch.ones_like(sums[sums > 0]), atol=1e-5)


@pytest.mark.property
@pytest.mark.parametrize("attention", ["additive", "local-p", "none"])
def test_beam_of_width_one_is_greedy(attention):
    model = tiny(attention, dropout=0.0).eval()
    src, src_len, _ = batch()
    greedy, gw = model.greedy(src[:1], src_len[:1])
    beam, bw = model.beam(src[:1], src_len[:1], width=1)
    assert beam == greedy[0]
    torch.testing.assert_close(bw[: len(beam)], gw[0, : len(beam)])
    wide, w = model.beam(src[:1], src_len[:1], width=3)
    assert w.shape[1] == 7 and len(wide) <= model.cfg.max_output_len


@pytest.mark.bad_input
def test_config_validation():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2SeqConfig(10, 10, attention="concat")


def test_shared_encoder_reads_both_directions():
    """The backward half of the memory at position 0 depends on the last character."""
    model = tiny("additive", dropout=0.0, shared_encoder=True).eval()
    src, src_len, _ = batch()
    memory, _, _ = model.encode(src[:1], src_len[:1])
    changed = src[:1].clone()
    changed[0, 6] = 3 if changed[0, 6] != 3 else 4
    memory2, _, _ = model.encode(changed, src_len[:1])
    half = memory.shape[-1] // 2
    assert not torch.allclose(memory[0, 0, half:], memory2[0, 0, half:])
    torch.testing.assert_close(memory[0, 0, :half], memory2[0, 0, :half])  # forward: causal


@pytest.mark.skipif(not gru_supported(torch.zeros(1)), reason="no C++ compiler")
@pytest.mark.reference
@pytest.mark.parametrize("shared", [False, True], ids=["two-grus", "shared-encoder"])
def test_compiled_encoder_equals_the_nn_gru_encoder(shared, monkeypatch):
    """The compiled GRU path and the nn.GRU path give the same memory, loss and gradients."""
    model = tiny("additive", dropout=0.0, shared_encoder=shared).double()
    src, src_len, tgt = batch()
    results = []
    for disabled in ("0", "1"):
        monkeypatch.setenv(ENV_DISABLE, disabled)
        model.zero_grad()
        memory, _, summary = model.encode(src, src_len)
        model.loss(src, src_len, tgt).backward()
        results.append([memory, summary] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
