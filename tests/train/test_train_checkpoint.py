import copy
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnkit import tasks
from attnkit.models import PRESETS, Seq2Seq, Seq2SeqConfig
from attnkit.models.decoding import greedy
from attnkit.recipes import seq2seq as recipe
from attnkit.train import CheckpointError, TrainConfig, fit, load_model, save_model
from attnkit.train.checkpoint import load_trainer


def setup(n=400, **model_kw):
    pairs = tasks.get("times").generate(n, 0)
    train, held = tasks.split(pairs, 0.2, 0)
    task = tasks.get("times").from_pairs(pairs)
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(len(task.src_vocab), len(task.tgt_vocab), **{**PRESETS["tiny"], **model_kw})
    return Seq2Seq(cfg), task, task.dataset(train), task.dataset(held)


def test_save_and_load_round_trip(tmp_path):
    model, task, train, _ = setup()
    save_model(tmp_path, model, {"task": task.to_config()})
    loaded, config = load_model(tmp_path)
    assert config["model"] == "seq2seq" and config["config"] == model.cfg.to_dict()
    assert tasks.from_config(config["task"]).src_vocab.itos == task.src_vocab.itos
    b = train.batch(torch.arange(16))
    assert greedy(loaded, b.src, b.src_len).ids == greedy(model.eval(), b.src, b.src_len).ids
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_checkpoint_written_by_attnkit_0_1_loads(tmp_path):
    """The old layout: the seq2seq config under "model", vocabularies at the top level."""
    model, task, train, _ = setup()
    save_model(tmp_path, model, {})
    without_digest(tmp_path)
    cfg = {k: v for k, v in model.cfg.to_dict().items() if k not in ("pad_id", "bos_id", "eos_id")}
    vocabs = {"src_vocab": task.src_vocab.to_list(), "tgt_vocab": task.tgt_vocab.to_list()}
    data = {"task": "times", "n": 400, "seed": 0, "held_out": 0.2, "max_input_len": 60}
    old = {"attnkit_version": "0.1.0", "model": cfg, **vocabs, **data, "epoch": 3}
    old["metrics"] = {"exact_match": 0.5}
    (tmp_path / "config.json").write_text(json.dumps(old))
    run = recipe.load(tmp_path)
    assert run.config["upgraded_from"] == 1 and run.task.name == "times"
    assert run.task.max_input_len == 60 and run.config["metrics"] == {"exact_match": 0.5}
    b = train.batch(torch.arange(8))
    assert greedy(run.model, b.src, b.src_len).ids == greedy(model.eval(), b.src, b.src_len).ids
    _, held = tasks.split(tasks.get("times").generate(400, 0), 0.2, 0)
    assert recipe.held_out_pairs(run.config) == held  # the old run's split, regenerated


def without_digest(directory):
    """The weights rewritten without the config digest, as attnkit 0.1 wrote them."""
    path = directory / "model.safetensors"
    save_file(load_file(path), path)


def resigned(directory):
    """The weights rewritten with the digest of the config.json beside them: a checkpoint whose
    two files agree, so only the checks behind the digest can refuse what it says."""
    from attnkit.train.checkpoint import DIGEST, config_digest

    path = directory / "model.safetensors"
    config = json.loads((directory / "config.json").read_text())
    save_file(load_file(path), path, metadata={DIGEST: config_digest(config)})


@pytest.mark.bad_input
def test_corrupt_checkpoints_raise_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_model(tmp_path / "missing")
    model, task, _, _ = setup()
    save_model(tmp_path, model, {"task": task.to_config()})
    config = json.loads((tmp_path / "config.json").read_text())
    hidden = config["config"]
    for bad, message in [  # each checked before anything is built at its size
        ({**config, "model": "gpt-17"}, "unknown model 'gpt-17'"),
        ({**config, "config": {**hidden, "hidden_dim": 1.5}}, "hidden_dim must be int"),
        ({**config, "config": {**hidden, "depth": 3}}, "unknown seq2seq config fields"),
        ({**config, "config": {**hidden, "hidden_dim": 64}}, "does not match its config"),
        ({**config, "config": {**hidden, "hidden_dim": 2**40}}, "hidden_dim must be <= 65536"),
        ({**config, "config": {**hidden, "max_output_len": 10**9}}, "max_output_len must be <="),
    ]:
        (tmp_path / "config.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match="was edited"):  # the digest catches it first
            load_model(tmp_path)
        resigned(tmp_path)  # both files agree: the schema and the shapes catch it
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path)
        save_model(tmp_path, model, {"task": task.to_config()})
    vocab = config["task"]["src_vocab"]
    for bad_vocab, message in [
        (vocab[1:], "vocabularies of"),
        (vocab + ["ab"], "single characters"),
        (vocab + [vocab[0]], "twice"),
    ]:
        (tmp_path / "config.json").write_text(
            json.dumps({**config, "task": {**config["task"], "src_vocab": bad_vocab}})
        )
        resigned(tmp_path)
        with pytest.raises(CheckpointError, match=message):
            recipe.load(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="config.json is corrupt"):
        load_model(tmp_path)
    (tmp_path / "trainer.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="trainer.pt is corrupt"):
        load_trainer(tmp_path)


@pytest.mark.bad_input
def test_an_edited_vocabulary_is_refused_not_used(tmp_path):
    """Swapping two entries keeps every size: only the digest can tell."""
    model, task, _, _ = setup()
    save_model(tmp_path, model, {"task": task.to_config()})
    config = json.loads((tmp_path / "config.json").read_text())
    vocab = config["task"]["src_vocab"]
    vocab[0], vocab[1] = vocab[1], vocab[0]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match .*model.safetensors"):
        recipe.load(tmp_path)


@pytest.mark.bad_input
def test_a_huge_n_in_the_data_description_is_refused(tmp_path):
    for n in (1e12, 10**12, "300", 5):
        config = {"data": {"task": "times", "n": n, "seed": 0, "held_out": 0.2}}
        with pytest.raises(CheckpointError, match="data description"):
            recipe.held_out_pairs(config)


def test_resumed_training_ends_where_an_uninterrupted_run_does(tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=10, progress=False)
    model, task, train, held = setup(dropout=0.1)
    full = fit(model, task, train, held, cfg, tmp_path / "full", log=lambda s: None)
    full_weights = model.state_dict()

    def interrupt(line):  # called after each epoch's checkpoint is written
        if line.startswith("epoch   1"):
            raise KeyboardInterrupt

    model, task, train, held = setup(dropout=0.1)
    with pytest.raises(KeyboardInterrupt):
        fit(model, task, train, held, cfg, tmp_path / "cut", log=interrupt)
    model, task, train, held = setup(dropout=0.1)  # a new process would start from fresh weights
    resumed = fit(model, task, train, held, cfg, tmp_path / "cut", resume=True, log=lambda s: None)
    assert [h["exact_match"] for h in resumed["history"]] == [
        h["exact_match"] for h in full["history"]
    ]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, full_weights[name], msg=name)


def test_training_learns(tmp_path):
    model, task, train, held = setup(1500)
    cfg = TrainConfig(epochs=6, batch_size=32, lr=1e-2, progress=False)
    state = fit(model, task, train, held, cfg, tmp_path, log=lambda s: None)
    assert state["history"][-1]["char_accuracy"] > state["history"][0]["char_accuracy"]
    assert state["best"] > 0.1  # whole strings right, from 0 at the start


def test_only_rank_0_writes_and_ranks_draw_other_dropout(tmp_path):
    model, task, train, held = setup(dropout=0.1)
    cfg = TrainConfig(epochs=1, batch_size=64, progress=False)
    fit(model, task, train, held, cfg, tmp_path / "r1", log=lambda s: None, rank=1)
    assert not (tmp_path / "r1").exists()
    order = []
    fit(
        model,
        task,
        train,
        held,
        cfg,
        tmp_path / "r0",
        log=lambda s: None,
        sampler=lambda epoch, n: order.append(epoch) or torch.arange(n),
    )
    # epoch 1's order is also asked for before training: its batches count the schedule's steps
    assert set(order) == {1} and (tmp_path / "r0" / "model.safetensors").is_file()


class _Recorded:
    """A training set that records the size of every batch asked of it."""

    def __init__(self, data):
        self.data, self.sizes = data, []

    def __len__(self):
        return len(self.data)

    def batch(self, idx):
        self.sizes.append(len(idx))
        return self.data.batch(idx)


def test_a_sampler_may_give_its_own_batches_and_the_schedule_counts_them(tmp_path):
    model, task, train, held = setup(400)  # about 320 training examples
    sizes = [10, 30, 60] * 3 + [len(train) - 300]  # 10 steps, where batches of 64 make 5
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-2, progress=False)
    recorded = _Recorded(train)

    def batches(epoch, n):
        return list(torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).split(sizes))

    lrs = []  # the learning rate after each epoch, from the trainer state saved before the log

    def log(_):
        lrs.append(load_trainer(tmp_path)["scheduler"]["_last_lr"][0])

    state = fit(model, task, recorded, held, cfg, tmp_path, log=log, sampler=batches)
    assert recorded.sizes == sizes * 2
    assert [len(h["step_losses"]) for h in state["history"]] == [10, 10]
    # the cosine schedule spans the 20 steps taken: half-way after epoch 1, lr / 20 at the end
    assert lrs == pytest.approx([cfg.lr * (0.05 + 0.95 * 0.5), cfg.lr * 0.05])
    with pytest.raises(ValueError, match="non-empty 1-D index tensors"):
        fit(
            model,
            task,
            train,
            held,
            cfg,
            tmp_path / "bad",
            log=lambda s: None,
            sampler=lambda epoch, n: [torch.arange(n), torch.arange(0)],
        )


@pytest.mark.bad_input
def test_resuming_into_another_model_size_is_a_checkpoint_error(tmp_path):
    model, task, train, held = setup()
    cfg = TrainConfig(epochs=1, batch_size=64, progress=False)
    fit(model, task, train, held, cfg, tmp_path, log=lambda s: None)
    other, *_ = setup(hidden_dim=16)
    with pytest.raises(CheckpointError, match="another model size or attention"):
        fit(
            other,
            task,
            train,
            held,
            TrainConfig(epochs=2, batch_size=64, progress=False),
            tmp_path,
            resume=True,
            log=lambda s: None,
        )


@pytest.mark.bad_input
def test_train_config_validation():
    for bad in (dict(epochs=0), dict(batch_size=0), dict(patience=0), dict(lr=0.0)):
        with pytest.raises(ValueError, match="must be"):
            TrainConfig(**bad)


@pytest.mark.property
def test_the_schedule_warms_up_linearly_then_decays_by_cosine():
    from attnkit.train.loop import _cosine

    plain, warm = _cosine(100), _cosine(100, warmup=10)
    assert plain(0) == 1.0 and plain(100) == pytest.approx(0.05)
    assert [warm(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert warm(10) == 1.0 and warm(100) == pytest.approx(0.05)
    assert all(warm(s) >= warm(s + 1) for s in range(10, 100))
    with pytest.raises(ValueError, match="warmup must be in"):
        TrainConfig(warmup=1.0)


def test_a_fit_without_held_out_data_or_directory_trains_every_epoch_in_memory(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    model, task, train, held = setup(200)
    twin = copy.deepcopy(model)
    cfg = TrainConfig(epochs=3, batch_size=32, patience=1, progress=False)
    state = fit(model, None, train, None, cfg, None, log=lambda s: None)
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]  # patience does not stop it
    assert list(tmp_path.iterdir()) == []  # nothing written
    patient = dataclasses.replace(cfg, patience=10)
    kept = fit(twin, task, train, held, patient, tmp_path / "run", log=lambda s: None)
    assert kept["epoch"] == 3  # the same steps, with or without a held-out set and a checkpoint
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="both a task and held-out data"):
        fit(model, task, train, None, cfg, None)
    with pytest.raises(ValueError, match="cannot be resumed"):
        fit(model, None, train, None, cfg, None, resume=True)


@pytest.mark.bad_input
def test_a_stripped_digest_non_finite_weights_and_a_pickle_trainer_are_refused(tmp_path):
    model, task, _, _ = setup()
    save_model(tmp_path, model, {"task": task.to_config()})
    config = json.loads((tmp_path / "config.json").read_text())
    vocab = config["task"]["tgt_vocab"]
    swapped = [vocab[0], vocab[2], vocab[1], *vocab[3:]]  # same sizes: only the digest can tell
    (tmp_path / "config.json").write_text(
        json.dumps({**config, "task": {**config["task"], "tgt_vocab": swapped}})
    )
    without_digest(tmp_path)
    with pytest.raises(CheckpointError, match="carries no digest of its config"):
        load_model(tmp_path)
    for bad in (float("nan"), float("inf")):
        broken = copy.deepcopy(model)
        with torch.no_grad():
            next(broken.parameters()).view(-1)[3] = bad
        save_model(tmp_path, broken, {"task": task.to_config()})
        with pytest.raises(CheckpointError, match=r"not finite \(NaN or inf\) in 1 tensor"):
            load_model(tmp_path)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"epoch": Payload()}, tmp_path / "trainer.pt")
    with pytest.raises(CheckpointError, match="not a trainer state attnkit wrote") as err:
        load_trainer(tmp_path)
    assert "\n" not in str(err.value)
