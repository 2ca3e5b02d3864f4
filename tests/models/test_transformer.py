"""The encoder-decoder Transformer: cached decoding equals recomputing the prefix, for every
kernel and kind of positions; weights of every layer and head; padding never attended."""

import pytest
import torch

from attnkit.models import Transformer, TransformerConfig, decoding
from attnkit.tasks import PairBatch
from reference import copy_block

SMALL = dict(
    src_vocab_size=13,
    tgt_vocab_size=11,
    d_model=16,
    num_heads=4,
    encoder_layers=2,
    decoder_layers=2,
    max_output_len=8,
    dropout=0.0,
)


def model(**kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(**{**SMALL, **kw})).eval()


def inputs():
    g = torch.Generator().manual_seed(3)
    src = torch.randint(3, 13, (3, 7), generator=g)
    src_len = torch.tensor([7, 4, 2])
    src[1, 4:] = src[2, 2:] = 0
    return src, src_len


@pytest.mark.property
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned", "rotary"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_steps_equal_teacher_forcing_on_the_decoded_tokens(
    impl, positions, norm_first, monkeypatch
):
    monkeypatch.setenv("ATTNKIT_ATTENTION_IMPL", impl)
    m = model(positions=positions, norm_first=norm_first)
    src, src_len = inputs()
    state, tokens, logits = m.start(src, src_len), torch.full((3,), m.cfg.bos_id), []
    for t in range(6):
        step_logits, state, _ = m.step(tokens, state, t)
        logits.append(step_logits)
        tokens = step_logits.argmax(-1)
    decoded = torch.stack([lg.argmax(-1) for lg in logits], 1)  # (B, 6)
    with torch.no_grad():
        full = m(src, src_len, decoded)  # the whole prefix at every position, no cache
    torch.testing.assert_close(torch.stack(logits, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.property
def test_greedy_and_beam_run_through_the_shared_decoding_and_step_keeps_its_input_state():
    m = model(tie_embeddings=True)
    assert m.out.weight is m.tgt_embed.weight
    src, src_len = inputs()
    greedy = decoding.greedy(m, src, src_len)
    assert greedy.weights.shape[::2] == (3, 7)
    beam = decoding.beam_search(m, src[:1], src_len[:1], 3)
    greedy_score = decoding.sequence_score(m, src[:1], src_len[:1], greedy.ids[0])
    assert float(beam.scores[0]) >= greedy_score - 1e-6
    state = m.start(src, src_len)
    m.step(torch.full((3,), 1), state, 0)
    assert all(len(c.self_attn) == 0 and len(c.cross_attn) == 0 for c in state.caches)


@pytest.mark.property
def test_every_layers_and_heads_weights_and_padding():
    m = model()
    src, src_len = inputs()
    tgt = torch.randint(3, 11, (3, 5))
    _, w = m(src, src_len, tgt, return_weights=True)
    assert len(w.encoder) == len(w.decoder_self) == len(w.cross) == 2
    for enc, cross in zip(w.encoder, w.cross, strict=True):
        assert enc.shape == (3, 4, 7, 7) and cross.shape == (3, 4, 5, 7)
        assert (enc[1, :, :, 4:] == 0).all() and (cross[2, :, :, 2:] == 0).all()
        torch.testing.assert_close(cross.sum(-1), torch.ones(3, 4, 5))
    for self_w in w.decoder_self:
        assert (self_w.triu(1) == 0).all()


@pytest.mark.property
def test_padding_tokens_do_not_change_the_output():
    m = model()
    src, src_len = inputs()
    other = src.clone()
    other[1, 4:] = 5  # what lies past a row's length is never read
    tgt = torch.randint(3, 11, (3, 5))
    torch.testing.assert_close(m(src, src_len, tgt), m(other, src_len, tgt))


@pytest.mark.property
def test_training_lowers_the_loss():
    torch.manual_seed(0)
    m = Transformer(TransformerConfig(**SMALL))
    src, src_len = inputs()
    batch = PairBatch(src, src_len, torch.tensor([[4, 5, 6, 2], [7, 8, 2, 0], [9, 2, 0, 0]]))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = m.loss(batch).item()
    for _ in range(60):
        opt.zero_grad()
        m.loss(batch).backward()
        opt.step()
    assert m.loss(batch).item() < first / 4


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kw,message",
    [
        ({"d_model": 18}, "divisible by num_heads"),
        ({"positions": "alibi"}, "positions must be one of"),
        ({"max_len": 8}, "max_output_len < max_len"),
        ({"encoder_layers": 0}, "encoder_layers must be an int >= 1"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_bad_configs_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        TransformerConfig(**{**SMALL, **kw})


@pytest.mark.bad_input
def test_over_long_inputs_are_refused():
    m = model(max_len=10)
    with pytest.raises(ValueError, match="exceed max_len 10"):
        m.start(torch.randint(3, 13, (1, 11)), torch.tensor([11]))


@pytest.mark.property
@pytest.mark.parametrize("impl", ["eager", "sdpa", "chunked"])
def test_selected_layers_heads_and_rows_are_slices_of_the_full_weights(impl, monkeypatch):
    """Asking for some layers / heads / query rows gives exactly those slices of every weight
    (self and cross), on every kernel, and None for the layers left out."""
    monkeypatch.setenv("ATTNKIT_ATTENTION_IMPL", impl)
    m = model()
    src, src_len = inputs()
    tgt = torch.randint(3, 11, (3, 6), generator=torch.Generator().manual_seed(4))
    _, full = m(src, src_len, tgt, return_weights=True)
    _, some = m(src, src_len, tgt, return_weights=True, layers=[-1], heads=[2, 0], rows=[5, 1])
    for kind in ("encoder", "decoder_self", "cross"):
        whole, part = getattr(full, kind), getattr(some, kind)
        assert part[0] is None
        want = whole[1][:, [2, 0]][:, :, [5, 1]]
        torch.testing.assert_close(part[1], want, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        m(src, src_len, tgt, return_weights=True, layers=[2])


@pytest.mark.reference
def test_the_post_norm_stack_equals_torch_nn_transformer_with_copied_weights():
    """Post-norm, ReLU, no dropout: our encoder-decoder between the embeddings and the output
    projection computes what torch.nn.Transformer computes (its final norms removed, which
    the post-norm arrangement does not have), to 1e-5 in float32."""
    from torch import nn

    m = model(norm_first=False, activation="relu", ff_dim=24)
    theirs = nn.Transformer(
        16,
        4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=24,
        dropout=0.0,
        batch_first=True,
    ).eval()
    theirs.encoder.norm, theirs.decoder.norm = nn.Identity(), nn.Identity()
    for ours, their in zip(
        [*m.encoder, *m.decoder], [*theirs.encoder.layers, *theirs.decoder.layers], strict=True
    ):
        copy_block(ours, their)
    src, src_len = inputs()
    tgt = torch.randint(3, 11, (3, 6), generator=torch.Generator().manual_seed(6))
    pad = torch.arange(src.shape[1])[None] >= src_len[:, None]  # torch: True = padding
    x_src = m._embed(m.src_embed, src)
    x_tgt = m._embed(m.tgt_embed, m._shifted(tgt))
    causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
    want = m.out(
        theirs(x_src, x_tgt, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    )
    torch.testing.assert_close(m(src, src_len, tgt), want, atol=1e-5, rtol=1e-5)
