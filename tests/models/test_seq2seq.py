import pytest
import torch

from attnkit._ext.gru import gru_supported
from attnkit._ext.native import ENV_DISABLE
from attnkit.models import ATTENTIONS, PRESETS, Seq2Seq, Seq2SeqConfig
from attnkit.models.decoding import beam_search, greedy, sequence_score
from attnkit.tasks import PairBatch

EOS = 2  # Seq2SeqConfig's default eos_id


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
    return PairBatch(src, src_len, tgt)


@pytest.mark.parametrize("shared", [False, True], ids=["two-grus", "shared-encoder"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_kind_trains(attention, shared):
    model = tiny(attention, shared_encoder=shared, dropout=0.1).train()
    src, src_len, tgt = b = batch()
    assert model(src, src_len, tgt).shape == (3, 5, 9)
    loss = model.loss(b)
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
    decoded = greedy(model, src, src_len)
    ids, weights = decoded.ids, decoded.weights
    for i in range(3):
        one = greedy(model, src[i : i + 1, : src_len[i]], src_len[i : i + 1])
        alone, w_alone = one.ids, one.weights
        assert alone[0] == ids[i]
        n = w_alone.shape[1]
        torch.testing.assert_close(weights[i, :n, : src_len[i]], w_alone[0], atol=1e-5, rtol=0)
        assert (weights[i, :, src_len[i] :] == 0).all()


@pytest.mark.property
@pytest.mark.parametrize("attention", ["additive", "general", "dot", "local-m"])
def test_weights_are_distributions(attention):
    model = tiny(attention, dropout=0.0).eval()
    src, src_len, _ = batch()
    weights = greedy(model, src, src_len).weights
    sums = weights.sum(-1)
    assert torch.allclose(sums[sums > 0], torch.ones_like(sums[sums > 0]), atol=1e-5)


@pytest.mark.property
@pytest.mark.parametrize("attention", ["additive", "local-p", "none"])
def test_beam_of_width_one_is_greedy(attention):
    model = tiny(attention, dropout=0.0).eval()
    src, src_len, _ = batch()
    g = greedy(model, src[:1], src_len[:1])
    b = beam_search(model, src[:1], src_len[:1], width=1)
    assert b.ids == g.ids
    n = len(b.ids[0])
    torch.testing.assert_close(b.weights[0, :n], g.weights[0, :n])
    wide = beam_search(model, src[:1], src_len[:1], width=3)
    assert wide.weights.shape[2] == 7 and len(wide.ids[0]) <= model.cfg.max_output_len


@pytest.mark.property
@pytest.mark.parametrize("attention", ["additive", "general", "none"])
def test_a_wider_beam_never_scores_below_greedy(attention):
    """Under the score both use (length-normalised log-probability, recomputed here by teacher
    forcing), beam search of width 2..5 is never below greedy, and on some inputs it differs."""
    differs = 0
    for seed in range(4):
        torch.manual_seed(seed)
        model = Seq2Seq(
            Seq2SeqConfig(12, 6, attention=attention, max_output_len=6, **PRESETS["tiny"])
        ).eval()
        g = torch.Generator().manual_seed(seed)
        for _ in range(6):
            src = torch.randint(3, 12, (1, 5), generator=g)
            src_len = torch.tensor([5])
            base = greedy(model, src, src_len)
            base_score = sequence_score(model, src, src_len, base.ids[0])
            torch.testing.assert_close(float(base.scores[0]), base_score, atol=1e-5, rtol=0)
            for width in (2, 3, 5):
                out = beam_search(model, src, src_len, width=width)
                score = sequence_score(model, src, src_len, out.ids[0])
                assert score >= base_score - 1e-5, (width, out.ids, base.ids)
                torch.testing.assert_close(float(out.scores[0]), score, atol=1e-5, rtol=0)
                differs += out.ids != base.ids
    assert differs > 0  # the models and inputs are ones where the beam matters


@pytest.mark.bad_input
def test_beam_search_refuses_bad_width():
    model = tiny("additive").eval()
    src, src_len, _ = batch()
    for width in (0, 10**6, 2.5):
        with pytest.raises(ValueError, match="beam width must be an int from 1 to 256"):
            beam_search(model, src[:1], src_len[:1], width)


@pytest.mark.bad_input
def test_config_validation():
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2SeqConfig(10, 10, attention="concat")
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        Seq2SeqConfig(10, 10, hidden_dim=33)
    with pytest.raises(ValueError, match="eos_id must be a target id below 10"):
        Seq2SeqConfig(10, 10, eos_id=10)
    assert Seq2SeqConfig(10, 10, hidden_dim=64).attn_dim == 32  # None: half the state
    with pytest.raises(ValueError, match="hidden_dim must be <= 65536"):
        Seq2SeqConfig(10, 10, hidden_dim=1_000_000)  # would try to allocate terabytes


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
        model.loss(PairBatch(src, src_len, tgt)).backward()
        results.append([memory, summary] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
