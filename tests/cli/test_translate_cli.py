"""``attnkit train translate``, ``attnkit translate`` and ``attnkit eval`` end to end, on a few
verses standing in for the Bibles."""

import json
import subprocess
import sys

import pytest
import sacrebleu
import torch

from attnkit.cli import main
from attnkit.recipes import translate as recipe
from attnkit.tasks import translation as tr
from reference import VERSES_EN as EN
from reference import VERSES_ES as ES

SMALL = {"rnn": ["--hidden", "32"], "transformer": ["--d-model", "32", "--layers", "1"]}


def _corpus() -> tr.ParallelCorpus:
    pairs = [tr.VersePair(f"B{b}", 1, i + 1, EN[i], ES[i]) for b in range(20) for i in range(4)]
    return tr.split_pairs(pairs, {"corpus": "web-sparv"})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(tr, "parallel_corpus", _corpus)
    root = tmp_path_factory.mktemp("translate")
    try:
        for model in SMALL:
            args = [
                "train",
                "translate",
                "--model",
                model,
                "--out",
                str(root / model),
                "--epochs",
                "2",
                "--lr",
                "0.01",
                "--vocab-size",
                "60",
                "--threads",
                "1",
                *SMALL[model],
            ]
            assert main(args) == 0
    finally:
        patch.undo()
    return root


@pytest.mark.parametrize("model", sorted(SMALL))
def test_translate_reloads_in_a_new_process_with_the_same_output(checkpoints, model, capsys):
    ckpt = str(checkpoints / model)
    assert main(["translate", "--checkpoint", ckpt, "--json", EN[0]]) == 0
    here = json.loads(capsys.readouterr().out)
    done = subprocess.run(
        [sys.executable, "-m", "attnkit.cli", "translate", "--checkpoint", ckpt, "--json", EN[0]],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    there = json.loads(done.stdout)
    weights_there = there.pop("weights")
    weights = here.pop("weights")
    assert there == here  # the same text and subwords
    assert torch.allclose(torch.tensor(weights_there), torch.tensor(weights), atol=1e-5)
    assert len(weights[0]) == len(here["source_pieces"])
    assert len(weights) in (len(here["output_pieces"]), len(here["output_pieces"]) + 1)
    assert all(abs(sum(row) - 1) < 1e-4 for row in weights)  # every row is a distribution


@pytest.mark.parametrize("model", sorted(SMALL))
def test_eval_scores_equal_sacrebleu_on_the_translate_command_output(
    checkpoints, model, tmp_path, capsys
):
    ckpt = str(checkpoints / model)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{e}\t{s}\n" for e, s in zip(EN, ES, strict=True)))
    saved = tmp_path / "files"
    assert (
        main(["eval", "--checkpoint", ckpt, "--data", str(pairs), "--json", "--save", str(saved)])
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    source = saved / "source.txt"
    assert source.read_text().splitlines() == EN
    assert main(["translate", "--checkpoint", ckpt, "--input", str(source)]) == 0
    hyps = capsys.readouterr().out.splitlines()
    assert hyps == (saved / "hypothesis.txt").read_text().splitlines()
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [ES]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [ES]).score)
    assert scores["n"] == 4 and scores["chrf_signature"].startswith("nrefs:1")


@pytest.mark.parametrize("model", sorted(SMALL))
def test_an_input_file_decodes_together_as_each_line_alone(checkpoints, model, tmp_path, capsys):
    """Lines of different lengths decode in one batch, greedily and with a beam of 3; each
    comes out as it does alone, in input order, and a blank line stays blank. A bad line stops
    the command before anything is printed, and is named."""
    ckpt = str(checkpoints / model)
    lines = [EN[2], EN[0], "", EN[3], f"{EN[1]} {EN[2]}"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n")
    for beam in ("1", "3"):
        run = ["translate", "--checkpoint", ckpt, "--beam", beam, "--json"]
        assert main([*run, "--input", str(source)]) == 0
        together = capsys.readouterr().out.splitlines()
        assert len(together) == len(lines) and together[2] == ""
        for line, out in zip(lines, together, strict=True):
            if line:
                assert main([*run, line]) == 0
                alone, batched = json.loads(capsys.readouterr().out), json.loads(out)
                weights = torch.tensor(batched.pop("weights"))
                torch.testing.assert_close(
                    weights, torch.tensor(alone.pop("weights")), atol=1e-5, rtol=0
                )
                assert batched == alone and weights.shape[1] == len(alone["source_pieces"])
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{EN[0]}\n{'amen ' * 5000}\n")
    assert main(["translate", "--checkpoint", ckpt, "--input", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "line 2:" in err


def test_eval_defaults_to_the_test_books_and_prints_signatures(checkpoints, monkeypatch, capsys):
    monkeypatch.setattr(tr, "parallel_corpus", _corpus)
    assert main(["eval", "--checkpoint", str(checkpoints / "rnn")]) == 0
    out = capsys.readouterr().out
    assert f"verses  {len(_corpus().test)}" in out
    assert "BLEU" in out and "nrefs:1|case:mixed|eff:no|tok:13a" in out and "chrF" in out


def test_alignment_plots_for_each_model(checkpoints, tmp_path, capsys):
    for model in SMALL:
        plots = tmp_path / model
        for words in ([], ["--words"]):
            assert (
                main(
                    [
                        "translate",
                        "--checkpoint",
                        str(checkpoints / model),
                        "--plot",
                        str(plots / (words[0] if words else "pieces")),
                        *words,
                        EN[2],
                    ]
                )
                == 0
            )
        names = sorted(p.name for p in (plots / "pieces").glob("*.png"))
        if model == "rnn":
            assert names == ["000.png"]
        else:  # one grid of heads per layer, and the mean
            assert names == ["000_layer0.png", "000_mean.png"]
        assert sorted(p.name for p in (plots / "--words").glob("*.png")) == names
    capsys.readouterr()


def test_a_model_without_attention_translates_but_has_no_alignment_to_plot(tmp_path, capsys):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tr, "parallel_corpus", _corpus)
        assert (
            main(
                [
                    "train",
                    "translate",
                    "--model",
                    "rnn",
                    "--attention",
                    "none",
                    "--out",
                    str(tmp_path / "none"),
                    "--epochs",
                    "1",
                    "--vocab-size",
                    "60",
                    "--hidden",
                    "16",
                    "--threads",
                    "1",
                ]
            )
            == 0
        )
    ckpt = str(tmp_path / "none")
    capsys.readouterr()
    assert main(["translate", "--checkpoint", ckpt, EN[1]]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["translate", "--checkpoint", ckpt, "--plot", str(tmp_path / "p"), EN[1]]) == 2
    assert "without attention" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_merged_words_keep_each_row_a_distribution():
    from attnkit.cli.translate import END, merge_words

    weights = torch.softmax(torch.randn(4, 5), -1)
    merged, rows, cols = merge_words(
        weights, ["▁Y", "▁di", "jo", END], ["▁God", "▁sa", "id", ",", "▁Let"]
    )
    assert rows == ["Y", "dijo", END] and cols == ["God", "said,", "Let"]
    assert torch.allclose(merged.sum(1), torch.ones(3))
    assert torch.allclose(
        merged[1],
        weights[1:3]
        .mean(0)[[0]]
        .new_tensor(
            [weights[1:3, 0].mean(), weights[1:3, 1:4].sum(1).mean(), weights[1:3, 4].mean()]
        ),
    )


def test_translation_refuses_what_does_not_apply(checkpoints, tmp_path, capsys):
    ckpt = str(checkpoints / "rnn")
    assert main(["train", "translate", "--out", str(tmp_path / "x"), "--n", "5"]) == 2
    assert (
        main(
            ["train", "translate", "--model", "rnn", "--d-model", "8", "--out", str(tmp_path / "y")]
        )
        == 2
    )
    assert (
        main(
            [
                "train",
                "translate",
                "--model",
                "rnn",
                "--positions",
                "rotary",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert main(["translate", "--checkpoint", ckpt, " "]) == 2
    assert main(["predict", "--checkpoint", ckpt, "x"]) == 2
    assert main(["train", "times", "--direction", "es-en", "--out", str(tmp_path / "z")]) == 2
    assert main(["train", "lm", "--joined", "0.5", "--out", str(tmp_path / "z")]) == 2
    assert main(["train", "prices", "--joined", "0.5", "--out", str(tmp_path / "z")]) == 2
    assert main(["train", "times", "--joined", "0", "--out", str(tmp_path / "z")]) == 2
    assert main(["train", "lm", "--batch-by", "verses", "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert err.count("--joined does not apply") == 3
    assert "--batch-by does not apply to train lm" in err
    assert "--n does not apply" in err and "--d-model does not apply to rnn" in err
    assert "--positions does not apply to rnn" in err
    assert "whitespace" in err and "use attnkit eval, attnkit export, attnkit translate" in err
    assert "--direction does not apply to train times" in err


def test_the_recipe_resumes_with_its_own_vocabulary(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setattr(tr, "parallel_corpus", _corpus)
    out = tmp_path / "run"
    said = []
    first = recipe.train(
        out=out,
        model="rnn",
        vocab_size=60,
        epochs=1,
        hidden_dim=32,
        progress=False,
        log=said.append,
    )
    # 16 training books of verses 1-4: 48 consecutive pairs, of which JOINED * 64 are added
    joined = round(recipe.JOINED * 64)
    assert f"{64 + joined} training pairs (with {joined} of two joined verses)" in "".join(said)
    more = recipe.train(out=out, resume=True, epochs=2, progress=False, log=lambda *_: None)
    assert more.task.to_config()["src_vocab"] == first.task.to_config()["src_vocab"]
    assert first.config["data"]["joined"] == more.config["data"]["joined"] == recipe.JOINED
    assert first.config["data"]["batch_by"] == more.config["data"]["batch_by"] == recipe.BATCH_BY
    assert [h["epoch"] for h in more.config["history"]] == [1, 2]
    with pytest.raises(ValueError, match="holds a rnn run"):
        recipe.train(out=out, resume=True, model="transformer", progress=False)
    with pytest.raises(ValueError, match="batch_by must be tokens or verses"):
        recipe.train(out=tmp_path / "other", model="rnn", batch_by="words", progress=False)
