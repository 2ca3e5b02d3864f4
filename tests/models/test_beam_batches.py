"""Beam search over a batch: every input gets the result it gets alone, whatever it is padded
to and whenever the other inputs' searches end (they leave the batch as they do)."""

import pytest
import torch

from attnkit.models import PRESETS, Seq2Seq, Seq2SeqConfig, Transformer, TransformerConfig
from attnkit.models.decoding import beam_search, greedy, sequence_score


def seq2seq(attention: str, seed: int):
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig(12, 7, attention=attention, max_output_len=9, **PRESETS["tiny"])
    return Seq2Seq(cfg).double().eval()


def transformer(positions: str, seed: int):
    torch.manual_seed(seed)
    cfg = TransformerConfig(
        src_vocab_size=12,
        tgt_vocab_size=7,
        d_model=16,
        num_heads=2,
        encoder_layers=1,
        decoder_layers=2,
        max_output_len=9,
        dropout=0.0,
        positions=positions,
    )
    return Transformer(cfg).double().eval()


def padded_inputs(seed: int, n: int = 7, longest: int = 8):
    g = torch.Generator().manual_seed(seed)
    src_len = torch.randint(1, longest + 1, (n,), generator=g)
    src = torch.randint(3, 12, (n, int(src_len.max())), generator=g)
    for i, length in enumerate(src_len.tolist()):
        src[i, length:] = 0
    return src, src_len


MODELS = [
    pytest.param(lambda s: seq2seq("additive", s), id="rnn-additive"),
    pytest.param(lambda s: seq2seq("none", s), id="rnn-none"),
    pytest.param(lambda s: transformer("rotary", s), id="transformer-rotary"),
    pytest.param(lambda s: transformer("sinusoidal", s), id="transformer-sinusoidal"),
]


@pytest.mark.property
@pytest.mark.parametrize("make", MODELS)
def test_each_input_of_a_batch_gets_its_own_beam(make):
    """Float64, so that no two hypotheses tie by rounding: ids equal, scores and weights equal
    to float64 precision, and a padded input's weights are 0 on its padding."""
    ended_apart = differs = 0
    for seed in range(2):
        model = make(seed)
        src, src_len = padded_inputs(seed)
        for width in (2, 4):
            together = beam_search(model, src, src_len, width)
            assert len(together.ids) == src.shape[0]
            lengths = set()
            for i, n in enumerate(src_len.tolist()):
                one = (src[i : i + 1, :n], src_len[i : i + 1])
                alone = beam_search(model, *one, width)
                # the score is the teacher-forced one of the ids: each hypothesis kept its state
                score = sequence_score(model, *one, alone.ids[0])
                torch.testing.assert_close(float(alone.scores[0]), score, atol=1e-9, rtol=0)
                assert together.ids[i] == alone.ids[0], (seed, width, i)
                torch.testing.assert_close(together.scores[i], alone.scores[0])
                steps = alone.weights.shape[1]
                torch.testing.assert_close(together.weights[i, :steps, :n], alone.weights[0])
                assert (together.weights[i, steps:] == 0).all()
                assert (together.weights[i, :, n:] == 0).all()
                lengths.add(len(alone.ids[0]))
                differs += alone.ids[0] != greedy(model, *one).ids[0]
            ended_apart += len(lengths) > 1
    assert ended_apart > 0 and differs > 0  # rows left the batch apart; the beam mattered


@pytest.mark.property
@pytest.mark.parametrize("make", MODELS)
def test_a_batched_beam_never_scores_below_greedy(make):
    model = make(5)
    src, src_len = padded_inputs(5, n=9)
    base = greedy(model, src, src_len)
    out = beam_search(model, src, src_len, 4)
    for i, n in enumerate(src_len.tolist()):
        one = (src[i : i + 1, :n], src_len[i : i + 1])
        score = sequence_score(model, *one, out.ids[i])
        torch.testing.assert_close(float(out.scores[i]), score, atol=1e-9, rtol=0)
        assert score >= sequence_score(model, *one, base.ids[i]) - 1e-9


@pytest.mark.bad_input
def test_an_empty_batch_is_refused():
    model = seq2seq("additive", 0)
    with pytest.raises(ValueError, match="at least one input"):
        beam_search(model, torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long))
