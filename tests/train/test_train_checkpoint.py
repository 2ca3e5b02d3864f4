import pytest
import torch

from attnkit.models import PRESETS, Seq2Seq, Seq2SeqConfig
from attnkit.tasks import CharVocab, PairDataset, generate, split
from attnkit.train import CheckpointError, TrainConfig, fit, load_model, save_model
from attnkit.train.checkpoint import load_trainer


def setup(n=400):
    pairs = generate("times", n, 0)
    train, held = split(pairs, 0.2, 0)
    sv = CharVocab.from_texts(s for s, _ in pairs)
    tv = CharVocab.from_texts(t for _, t in pairs)
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), **PRESETS["tiny"]))
    return model, PairDataset(train, sv, tv), PairDataset(held, sv, tv)


def test_save_and_load_round_trip(tmp_path):
    model, train, _ = setup()
    save_model(tmp_path, model, train.src_vocab, train.tgt_vocab, {"task": "times"})
    loaded, sv, tv, config = load_model(tmp_path)
    assert config["task"] == "times" and sv.itos == train.src_vocab.itos
    src, src_len, _ = train.batch(torch.arange(16))
    assert loaded.greedy(src, src_len)[0] == model.eval().greedy(src, src_len)[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.bad_input
def test_corrupt_checkpoints_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_model(tmp_path / "missing")
    model, train, _ = setup()
    save_model(tmp_path, model, train.src_vocab, train.tgt_vocab, {})
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_model(tmp_path)
    (tmp_path / "trainer.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="trainer.pt is corrupt"):
        load_trainer(tmp_path)


def test_resumed_training_ends_where_an_uninterrupted_run_does(tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=10, progress=False)
    model, train, held = setup()
    full = fit(model, train, held, cfg, tmp_path / "full", {}, log=lambda s: None)
    full_weights = model.state_dict()

    def interrupt(line):  # called after each epoch's checkpoint is written
        if line.startswith("epoch   1"):
            raise KeyboardInterrupt

    model, train, held = setup()
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, held, cfg, tmp_path / "cut", {}, log=interrupt)
    model, train, held = setup()  # a new process would start from fresh weights
    resumed = fit(model, train, held, cfg, tmp_path / "cut", {}, resume=True, log=lambda s: None)
    assert [h["exact_match"] for h in resumed["history"]] == [
        h["exact_match"] for h in full["history"]
    ]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, full_weights[name], msg=name)


def test_training_learns(tmp_path):
    model, train, held = setup(1500)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=1e-2, progress=False)
    state = fit(model, train, held, cfg, tmp_path, {}, log=lambda s: None)
    assert state["history"][-1]["char_accuracy"] > state["history"][0]["char_accuracy"]
    assert state["best"] > 0.1  # whole strings right, from 0 at the start


@pytest.mark.bad_input
def test_resuming_into_another_model_size_is_a_checkpoint_error(tmp_path):
    model, train, held = setup()
    cfg = TrainConfig(epochs=1, batch_size=64, progress=False)
    fit(model, train, held, cfg, tmp_path, {}, log=lambda s: None)
    other = Seq2Seq(Seq2SeqConfig(model.cfg.src_vocab_size, model.cfg.tgt_vocab_size,
                                  **{**PRESETS["tiny"], "hidden_dim": 16}))  # fmt: skip
    with pytest.raises(CheckpointError, match="another model size or attention"):
        fit(other, train, held, TrainConfig(epochs=2, batch_size=64, progress=False), tmp_path,
            {}, resume=True, log=lambda s: None)  # fmt: skip
