"""Every registered model: built from its config, forward and backward with finite gradients
everywhere, saved, and reloaded in a new process with bit-identical outputs."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from attnkit import models
from attnkit.models import PRESETS
from attnkit.tasks import PairBatch
from attnkit.train import save_model


def seq2seq_example():
    config = {
        "src_vocab_size": 12,
        "tgt_vocab_size": 9,
        "max_output_len": 6,
        "dropout": 0.1,
        **PRESETS["tiny"],
    }
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, 12, (3, 7), generator=g)
    src[1, 4:] = 0
    tgt = torch.randint(3, 9, (3, 5), generator=g)
    tgt[:, -1] = 2
    return config, PairBatch(src, torch.tensor([7, 4, 7]), tgt)


def transformer_example():
    _, batch = seq2seq_example()
    config = {
        "src_vocab_size": 12,
        "tgt_vocab_size": 9,
        "max_output_len": 6,
        "d_model": 16,
        "num_heads": 2,
        "positions": "rotary",
        "dropout": 0.1,
    }
    return config, batch


def decoder_only_example():
    g = torch.Generator().manual_seed(2)
    config = {"vocab_size": 12, "d_model": 16, "num_heads": 2, "layers": 2, "max_len": 16}
    return config, SimpleNamespace(tokens=torch.randint(1, 12, (3, 9), generator=g))


def lstm_lm_example():
    _, batch = decoder_only_example()
    return {"vocab_size": 12, "embed_dim": 8, "hidden_dim": 16, "layers": 2}, batch


def series_example(out: int = 3):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 5, generator=g)
    y = torch.randint(0, out, (4,), generator=g) if out > 1 else torch.randn(4, generator=g)
    return {"features": 5, "window": 6, "out": out}, SimpleNamespace(x=x, y=y)


def raffel_example():
    from attnkit.tasks.longmemory import make_batch

    batch = make_batch("add", 4, 12, generator=torch.Generator().manual_seed(4))
    return {"hidden_dim": 8}, batch


def classifier_example(pooling: str = "attention"):
    g = torch.Generator().manual_seed(5)
    if pooling == "han":
        ids = torch.randint(1, 20, (3, 2, 4), generator=g)
        lengths = torch.tensor([[4, 2], [3, 0], [1, 1]])
    else:
        ids, lengths = torch.randint(1, 20, (3, 6), generator=g), torch.tensor([6, 3, 1])
    config = {
        "vocab_size": 20,
        "classes": 3,
        "embed_dim": 8,
        "hidden_dim": 6,
        "attention_dim": 5,
        "pooling": pooling,
    }
    return config, SimpleNamespace(ids=ids, lengths=lengths, y=torch.tensor([0, 2, 1]))


def image_example():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    return {"widths": [4, 8], "block": "cbam", "reduction": 2}, SimpleNamespace(
        x=x, y=torch.tensor([0, 9, 3])
    )


def caption_example():
    x = torch.rand(3, 1, 8, 16, generator=torch.Generator().manual_seed(7))
    tgt = torch.tensor([[4, 5, 2], [6, 2, 0], [7, 8, 2]])
    config = {
        "widths": [4, 8],
        "block": "cbam",
        "reduction": 2,
        "hidden_dim": 8,
        "attention_dim": 6,
        "embed_dim": 5,
        "doubly_stochastic": 0.1,
    }
    return config, SimpleNamespace(x=x, tgt=tgt, src=x, src_len=None)


# one (config, batch) per registered model: a model without an entry fails the first test
EXAMPLES = {
    "seq2seq": seq2seq_example,
    "transformer": transformer_example,
    "decoder-only": decoder_only_example,
    "lstm-lm": lstm_lm_example,
    "series-attention": series_example,
    "series-lstm": lambda: series_example(1),
    "series-cnn": series_example,
    "series-mlp": lambda: series_example(2),
    "series-linear": lambda: series_example(1),
    "raffel-ellis": raffel_example,
    "text-classifier": lambda: classifier_example("han"),
    "image-classifier": image_example,
    "captioner": caption_example,
}


def test_every_registered_model_has_an_example():
    assert set(EXAMPLES) == set(models.names())


def outputs(model, batch) -> dict[str, torch.Tensor]:
    """What a reload must reproduce: the loss, and for decoders greedy ids and weights."""
    model.eval()
    with torch.no_grad():
        out = {"loss": model.loss(batch)}
    if hasattr(model, "step"):
        decoded = models.decoding.greedy(model, batch.src, batch.src_len)
        out["ids"] = torch.tensor([ids + [-1] * (9 - len(ids)) for ids in decoded.ids])
        out["weights"] = decoded.weights
    return out


RELOAD = """
import sys, torch
from attnkit.train import load_model
model, config = load_model(sys.argv[1])
batch = torch.load(sys.argv[2], weights_only=False)
sys.path.insert(0, sys.argv[4])
from test_registry import outputs
torch.save(outputs(model, batch), sys.argv[3])
"""


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_build_train_save_and_reload_in_a_new_process(name, tmp_path):
    config, batch = EXAMPLES[name]()
    torch.manual_seed(0)
    model = models.build(name, config)
    assert models.name_of(model) == name
    model.train()
    model.loss(batch).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    save_model(tmp_path / "ckpt", model, {})
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["model"] == name and saved["config"] == models.registry.config_to_dict(model.cfg)
    here = outputs(model, batch)
    torch.save(batch, tmp_path / "batch.pt")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RELOAD,
            str(tmp_path / "ckpt"),
            str(tmp_path / "batch.pt"),
            str(tmp_path / "out.pt"),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    there = torch.load(tmp_path / "out.pt", weights_only=False)
    assert here.keys() == there.keys()
    for key in here:
        assert torch.equal(here[key], there[key]), key


@pytest.mark.bad_input
def test_registry_errors():
    with pytest.raises(ValueError, match="unknown model 'nope'; registered: .*seq2seq"):
        models.build("nope")
    with pytest.raises(ValueError, match="takes a Seq2SeqConfig"):
        models.build("seq2seq", 3)
    with pytest.raises(ValueError, match="missing 2 required positional arguments"):
        models.build("seq2seq", {})
    with pytest.raises(ValueError, match="dropout must be float"):
        models.config_from_dict(
            "seq2seq", {"src_vocab_size": 5, "tgt_vocab_size": 5, "dropout": "0.1"}
        )
    with pytest.raises(ValueError, match="shared_encoder must be bool"):
        models.config_from_dict(
            "seq2seq", {"src_vocab_size": 5, "tgt_vocab_size": 5, "shared_encoder": 1}
        )
    with pytest.raises(ValueError, match="already registered"):
        models.register("seq2seq", models.Seq2SeqConfig)(torch.nn.Linear)


def test_variants_name_settings_of_registered_models():
    from attnkit.models import register_variant, variants

    series = variants("series")
    assert list(series)[:2] == ["attention", "attention-4h"]
    assert series["attention-4h"].model == "series-attention"
    model = series["attention-4h"].build({"features": 5, "window": 8, "out": 2})
    assert model.cfg.num_heads == 4 and model.cfg.window == 8
    with pytest.raises(ValueError, match="unknown series-mlp config fields: heads"):
        register_variant("series", "bad", "series-mlp", heads=2)
    with pytest.raises(ValueError, match="no model variants of 'nothing'"):
        variants("nothing")
